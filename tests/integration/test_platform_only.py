"""Commands only the platform may send (`Command.INTERNAL`: a Twilio webhook the gateway checked, a campaign's
send, a document's claim check) are refused 403 from an integrating system's broker user, and change nothing.

The attack it answers: any user allowed to publish to `commands` could send `sms.inbound` {"body": "STOP"} and
opt a number out for every organisation, or move another organisation's SMS with a known sid.
"""

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest

from tests.conftest import STACK_ENV
from tests.integration.test_broker_identity import CONFIGURE, READ, WRITE
from tests.support import infra as infra_mod
from tests.support.broker import publish_as
from tests.support.stack import Stack

PHONE = "+14155550142"
INTERNAL = [
    ("sms.inbound", {"sid": "SM" + "0" * 32, "from": PHONE, "to": "+15005550006", "body": "STOP"}),
    ("sms.provider_status", {"sid": "SM" + "1" * 32, "status": "delivered"}),
    ("sms.send_campaign_sms", {"campaignId": str(uuid4()), "leadId": str(uuid4())}),
    (
        "documents.attach",
        {"leadId": str(uuid4()), "sha256": "a" * 64, "size": 3, "contentType": "text/plain", "filename": "x.txt"},
    ),
]


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[infra_mod.Infra, str]]:
    infra = await infra_mod.provision()
    name = f"acme-{uuid4().hex[:8]}"
    url = await infra_mod.add_broker_user(infra, name, "pw", CONFIGURE, WRITE, READ)
    env = {
        **infra.env(),
        **STACK_ENV,
        "BROKER_ORGS": f"{name}:acme-org",
        "BLOB_DIR": str(tmp_path_factory.mktemp("blobs")),
    }
    stack = Stack(env, tmp_path_factory.mktemp("platform-only"))
    try:
        for service in ("leads", "sms", "documents"):
            stack.start(service)
        for service in ("leads", "sms", "documents"):
            await stack.wait_started(service)
        yield infra, url
    finally:
        stack.stop_all()
        await infra_mod.delete_broker_user(infra, name)
        await infra_mod.release(infra)


async def opted_out(infra: infra_mod.Infra, phone: str = PHONE) -> bool | None:
    conn = await asyncpg.connect(infra.database_url)
    try:
        return await conn.fetchval("SELECT opted_out FROM sms.sms_opt_outs WHERE phone = $1", phone)
    finally:
        await conn.close()


@pytest.mark.parametrize(("routing_key", "body"), INTERNAL, ids=[key for key, _ in INTERNAL])
async def test_an_integrating_system_may_not_send_the_platforms_own_commands(
    system: tuple[infra_mod.Infra, str], routing_key: str, body: dict
) -> None:
    infra, url = system
    reply = await publish_as(url, routing_key, body)
    assert (reply["status"], reply["body"]["type"]) == (403, "/problems/forbidden"), reply
    assert routing_key in reply["body"]["detail"]
    assert await opted_out(infra) is None  # the forged STOP opted nobody out


async def test_the_platform_itself_still_sends_them(system: tuple[infra_mod.Infra, str]) -> None:
    infra, _ = system
    routing_key, body = INTERNAL[0]
    other = "+14155550143"  # not the number the refused STOPs named
    reply = await publish_as(
        infra.amqp_url, routing_key, {**body, "sid": "SM" + "2" * 32, "from": other}, org="_provider"
    )
    assert reply["status"] == 200 and reply["body"] == {"applied": True, "optedOut": True}, reply
    assert await opted_out(infra, other) is True
