"""Several instances: two gateways, two of each service (leads, bookings, proposals), started at
once on a fresh database and vhost of their own. Presses spread over both gateways, the same key
sent to both at the same moment: each takes effect once; screens on either gateway see every
event once (also across a resume on the other gateway); the relays publish each event once."""

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from uuid import uuid4

import aio_pika
import aiohttp
import asyncpg
import pytest

from services.gateway.auth import issue
from shared import event_log
from tests.conftest import STACK_ENV
from tests.support import infra as infra_mod
from tests.support.realtime import ResumingScreen, assert_once_in_order
from tests.support.stack import TEST_SECRET, Stack, eventually, free_port, wait_http

SERVICES = ("leads", "bookings", "proposals")
ORG = "scale-org"


@pytest.fixture(scope="module")
async def scaled(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Stack, list[str], infra_mod.Infra]]:
    infra = await infra_mod.provision()
    stack = Stack({**infra.env(), **STACK_ENV}, tmp_path_factory.mktemp("scaled"))
    try:
        for service in SERVICES:  # both instances at once: their migrations race on the fresh database
            stack.start(service)
            stack.start(f"{service}_2", f"services.{service}")
        for name in [*SERVICES, *(f"{s}_2" for s in SERVICES)]:
            await stack.wait_started(name)
        urls = []
        for name in ("gateway", "gateway_2"):
            port = free_port()
            stack.start(name, "services.gateway", GATEWAY_PORT=str(port), PUBLIC_URL=f"http://127.0.0.1:{port}")
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            await wait_http(url + "/readyz", 30, "a gateway of the scaled stack")
        yield stack, urls, infra
    finally:
        stack.stop_all()
        await infra_mod.release(infra)


async def post(http: aiohttp.ClientSession, url: str, path: str, body: dict, key: str) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {issue(TEST_SECRET, ORG, 'agent-1')}", "Idempotency-Key": key}
    async with http.post(url + path, json=body, headers=headers) as response:
        return response.status, dict(response.headers), await response.json()


async def test_two_of_everything_keeps_each_press_once_and_every_screen_whole(
    scaled: tuple[Stack, list[str], infra_mod.Infra],
) -> None:
    _, urls, infra = scaled
    async with aiohttp.ClientSession() as http:
        screens = [ResumingScreen(http, url, ORG, ["leads.*"]) for url in urls]
        for screen in screens:
            await screen.connect()
        created = await asyncio.gather(
            *(
                post(
                    http, urls[i % 2], "/api/leads", {"name": f"Scale {i}", "phone": f"+1415555{i:04d}"}, f"create-{i}"
                )
                for i in range(40)
            )
        )
        assert all(status == 201 for status, _, _ in created), created
        leads = [body["lead"]["id"] for _, _, body in created]
        # The same key to both gateways at the same moment: one effect, the same answer twice.
        moves = await asyncio.gather(
            *(
                post(http, url, "/api/leads/update-status", {"leadId": lead, "status": "won"}, f"win-{lead}")
                for lead in leads
                for url in urls
            )
        )
        assert all(status == 200 for status, _, _ in moves), moves
        for first, second in zip(moves[::2], moves[1::2], strict=True):  # one lead's two answers
            assert first[2] == second[2]
        # A screen drops and resumes on the other gateway: the log is one, its position holds there.
        await screens[0].drop()
        more = await asyncio.gather(
            *(
                post(http, urls[1], "/api/leads/update-status", {"leadId": lead, "status": "new"}, f"x-{uuid4()}")
                for lead in leads[:10]
            )
        )
        assert all(status == 409 for status, _, _ in more)  # won is final: refused, no event
        moved = await asyncio.gather(
            *(
                post(http, urls[0], "/api/leads", {"name": f"Late {i}", "phone": "+14155550100"}, f"late-{i}")
                for i in range(10)
            )
        )
        screens[0].url = urls[1]
        await screens[0].connect()
        expected = [*leads, *(body["lead"]["id"] for _, _, body in moved)]

        def seen(screen: ResumingScreen) -> bool:
            created_ids = {e["data"]["leadId"] for e in screen.of("leads.created")}
            return set(expected) <= created_ids and len(screen.of("leads.status_changed")) >= len(leads)

        for screen in screens:
            await eventually(lambda s=screen: seen(s), 30, what="every event on every screen")
            changes = screen.of("leads.status_changed")
            assert_once_in_order(changes, [e["id"] for e in changes])
            assert Counter(e["data"]["leadId"] for e in changes) == Counter(leads)  # one change per lead
        for screen in screens:
            await screen.drop()

    conn = await asyncpg.connect(infra.database_url)
    try:
        history = await conn.fetch(
            "SELECT lead_id::text AS lead, count(*) AS n FROM leads.lead_status_history GROUP BY lead_id"
        )
        assert {r["lead"]: r["n"] for r in history} == dict.fromkeys(leads, 1)  # two gateways, one effect each
        assert await conn.fetchval("SELECT count(*) FROM leads.leads WHERE org_id = $1", ORG) == 50
        for service in SERVICES:
            applied = await conn.fetch(f"SELECT version FROM {service}.schema_migrations")
            assert len(applied) == len({r["version"] for r in applied})  # every migration once
    finally:
        await conn.close()
    assert Counter(await log_ids(infra)).most_common(1)[0][1] == 1  # two relays, each event published once


async def log_ids(infra: infra_mod.Infra) -> list[str]:
    """Every event id in the event log, read from its start up to a marker of our own (its end now)."""
    end = f"scale-test-{uuid4()}"
    connection = await aio_pika.connect(infra.amqp_url)
    ids: list[str] = []
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(event_log.marker(end), event_log.LOG)
        await channel.set_qos(prefetch_count=500)
        queue = await channel.get_queue(event_log.LOG, ensure=False)
        async with queue.iterator(arguments={"x-stream-offset": "first"}) as records:
            async for message in records:
                await message.ack()
                if event_log.is_marker(message):
                    if message.message_id == end:
                        break
                    continue
                ids.append(json.loads(message.body)["id"])
    return ids
