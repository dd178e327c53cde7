"""leads.query.get_many, the other services' one question for many leads (shared/lead_directory.py): only the
asking organisation's leads, at most 1,000 ids, anything else refused with a reason."""

import json
from uuid import uuid4

import aio_pika
import pytest

from shared.contracts.envelope import Header
from tests.support.broker import Probe


async def ask(probe: Probe, body: object, org: str) -> tuple[int, dict]:
    correlation_id = uuid4().hex
    exchange = await probe.channel.get_exchange("queries")
    await exchange.publish(
        aio_pika.Message(
            json.dumps(body).encode(),
            correlation_id=correlation_id,
            reply_to=probe.reply_queue,
            headers={Header.ORG: org},
            user_id=probe.broker_user,
            content_type="application/json",
        ),
        "leads.query.get_many",
    )
    (reply,) = await probe.reply(correlation_id)
    return reply.status, reply.body


async def lead_of(probe: Probe, org: str) -> str:
    (reply,) = await probe.reply(
        await probe.send("leads.create", {"name": "Known", "phone": "+14155550100"}, org=org, message_id=str(uuid4()))
    )
    return reply.body["lead"]["id"]


async def test_only_the_asking_organisations_leads_are_named(probe: Probe, org: str) -> None:
    mine, theirs = await lead_of(probe, org), await lead_of(probe, f"other-{uuid4().hex[:6]}")
    status, body = await ask(probe, {"leadIds": [mine, theirs, str(uuid4()), "not-a-uuid"]}, org)
    assert status == 200 and [lead["id"] for lead in body["leads"]] == [mine]  # another's is like an unknown one


@pytest.mark.parametrize(
    "body",
    [
        {"leadIds": [str(uuid4()) for _ in range(1001)]},  # more than a page
        {"leadIds": []},
        {"leadIds": "not a list"},
        {"leadIds": [{"id": 1}]},
        {"leadIds": ["x" * 65]},
        {},
    ],
    ids=["1001 ids", "none", "a string", "objects", "a 65-character id", "no ids"],
)
async def test_a_question_out_of_its_contract_is_refused(probe: Probe, org: str, body: dict) -> None:
    status, answer = await ask(probe, body, org)
    assert status == 422 and answer["detail"], answer
