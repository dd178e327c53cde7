"""Realtime that never misses an event: resume from a position after a drop, a gateway restart, a long gap."""

import asyncio
import itertools
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable

import aio_pika
import aiohttp
import asyncpg
import pytest

from services.gateway.auth import issue
from tests.conftest import STACK_ENV, Api
from tests.support import infra as infra_mod
from tests.support.realtime import (
    ResumingScreen,
    assert_once_in_order,
    envelope,
    publish_events,
)
from tests.support.stack import TEST_SECRET, Stack, eventually, free_port, wait_http

MOVES = ["contacted", "qualified", "proposal", "won"]


async def create_leads(api: Api, count: int) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with gate:
            return (await api.create_lead(f"Lead {i}", f"+1415555{i:04d}"))["id"]

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def assert_each_move_once(screen: ResumingScreen, leads: list[str]) -> None:
    changes = screen.of("leads.status_changed")
    assert_once_in_order(changes, [e["id"] for e in changes])
    by_lead: dict[str, list[str]] = {}
    for event in changes:
        by_lead.setdefault(event["data"]["leadId"], []).append(event["data"]["to"])
    assert by_lead == {lead: MOVES for lead in leads}


async def move_all(api: Api, leads: list[str]) -> None:
    for status in MOVES:
        code, _, body = await api.post("/api/leads/update-status", {"leadIds": leads, "status": status})
        assert code == 200 and body["updated"] == len(leads), body


@pytest.fixture(scope="module")
async def own_gateway(stack: Stack) -> AsyncIterator[tuple[Stack, str]]:
    """A gateway of the tests' own, to kill and restart, pinging every second."""
    port = free_port()
    stack.start("gateway-rt", "services.gateway", GATEWAY_PORT=str(port), WS_PING_INTERVAL="1")
    url = f"http://127.0.0.1:{port}"
    await wait_http(url + "/readyz", 30, "the realtime test gateway")
    yield stack, url
    stack.processes["gateway-rt"].stop()


async def test_a_socket_killed_in_the_middle_of_1000_events_resumes_with_each_once_in_order(
    api: Api, org: str, http: aiohttp.ClientSession, stack: Stack
) -> None:
    leads = await create_leads(api, 250)
    screen = ResumingScreen(http, stack.url, org, ["leads.status_changed"])
    await screen.connect()
    moving = asyncio.create_task(move_all(api, leads))
    await eventually(lambda: len(screen.events) >= 300, 60, what="the first 300 events")
    await screen.drop()
    got_before = len(screen.events)
    await moving
    welcome = await screen.connect()
    assert welcome["recovered"] is True and got_before < 1000
    await eventually(lambda: len(screen.events) >= 1000, 60, what="all 1000 events after the resume")
    assert_each_move_once(screen, leads)
    await screen.drop()


async def test_a_gateway_killed_and_restarted_in_the_middle_loses_nothing(
    api: Api, org: str, http: aiohttp.ClientSession, own_gateway: tuple[Stack, str]
) -> None:
    stack, url = own_gateway
    leads = await create_leads(api, 100)
    screen = ResumingScreen(http, url, org, ["leads.*"])
    await screen.connect()
    moving = asyncio.create_task(move_all(api, leads))
    await eventually(lambda: len(screen.events) >= 50, 60, what="the first events")
    stack.processes["gateway-rt"].stop(signal.SIGKILL)
    await eventually(lambda: screen.closed, 10, what="the screen to see its gateway go")
    await moving
    stack.processes["gateway-rt"].start()
    await wait_http(url + "/readyz", 30, "the restarted gateway")
    welcome = await screen.connect()
    assert welcome["recovered"] is True
    await eventually(lambda: len(screen.of("leads.status_changed")) >= 400, 60, what="all 400 events")
    assert_each_move_once(screen, leads)
    await screen.drop()


async def test_a_replay_of_10000_events_while_live_ones_keep_coming_has_no_gap_and_no_duplicate(
    org: str, http: aiohttp.ClientSession, stack: Stack, amqp: aio_pika.abc.AbstractChannel
) -> None:
    screen = ResumingScreen(http, stack.url, org, ["tests.*"])
    await screen.connect()
    await screen.drop()
    missed = [envelope(org, n=i) for i in range(10_000)]
    await publish_events(amqp, missed)
    live = [envelope(org, n=10_000 + i) for i in range(600)]

    async def keep_coming() -> None:
        for start in range(0, len(live), 20):
            await publish_events(amqp, live[start : start + 20])
            await asyncio.sleep(0.01)  # a steady trickle, not a burst: the seam must be crossed while it runs

    trickle = asyncio.create_task(keep_coming())
    welcome = await screen.connect()
    assert welcome["recovered"] is True
    await trickle
    everything = [e["id"] for e in missed + live]
    await eventually(lambda: len(screen.events) >= len(everything), 120, 0.1, what="10,600 events")
    assert_once_in_order(screen.events, everything)
    assert len(screen.events) == len(everything)
    await screen.drop()


async def test_a_replay_never_carries_another_organisations_events_and_a_copy_arrives_once(
    org: str, http: aiohttp.ClientSession, stack: Stack, amqp: aio_pika.abc.AbstractChannel
) -> None:
    other = f"{org}-other"
    screen = ResumingScreen(http, stack.url, org, ["#"])
    watching = ResumingScreen(http, stack.url, org, ["#"])
    await screen.connect()
    await watching.connect()
    await screen.drop()
    mine = [envelope(org, n=i) for i in range(50)]
    theirs = [envelope(other, n=i) for i in range(50)]
    twice = envelope(org, n=999)
    interleaved = [e for pair in zip(mine, theirs, strict=True) for e in pair]
    await publish_events(amqp, [*interleaved, twice, twice], batch=1)  # the relay may publish one twice
    barrier = envelope(org, n=1000)
    await publish_events(amqp, [barrier])
    for opened in (screen, watching):
        if opened is screen:
            assert (await screen.connect())["recovered"] is True
        await eventually(lambda o=opened: any(e["id"] == barrier["id"] for e in o.events), 30, what="the barrier")
        ids = [e["id"] for e in opened.events]
        assert ids == [e["id"] for e in [*mine, twice, barrier]]
        await opened.drop()


async def replay_records(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The gateway's `crm_replay_records_total`, by source (archive, log, probe)."""
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    found = re.findall(r'^crm_replay_records_total\{source="(\w+)"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return {source: float(value) for source, value in found}


async def archived_to(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT coalesce(max(head), -1) FROM event_log.archive") or -1
    finally:
        await conn.close()


async def test_a_resume_reads_its_own_organisations_records_and_no_other(
    org: str, http: aiohttp.ClientSession, stack: Stack, amqp: aio_pika.abc.AbstractChannel, infra: infra_mod.Infra
) -> None:
    """Many organisations' events lie between the screen's position and the head: the resume reads its own 40
    from the archive and none of the 4,000 others (one record of the log is read, to check the retention)."""
    screen = ResumingScreen(http, stack.url, org, ["#"])
    watching = ResumingScreen(http, stack.url, org, ["#"])
    await screen.connect()
    await watching.connect()
    await screen.drop()
    mine = [envelope(org, n=i) for i in range(40)]
    events = [envelope(f"{org}-other-{i % 40}", n=i) for i in range(4000)]
    for i, own in enumerate(mine):
        events.insert(100 * i + 99 + i, own)  # one of ours after every 100 of theirs, the last one ours
    await publish_events(amqp, events)
    await eventually(lambda: len(watching.events) >= len(mine), 60, what="the events read live")
    last = watching.events[-1]["position"]
    await eventually(lambda: _at_least(archived_to(infra.database_url), last), 60, what="the archive to hold them")
    before = await replay_records(http, stack.url)
    assert (await screen.connect())["recovered"] is True
    await eventually(lambda: len(screen.events) >= len(mine), 30, what="the replay")
    assert [e["id"] for e in screen.events] == [e["id"] for e in mine]
    read = {k: v - before.get(k, 0.0) for k, v in (await replay_records(http, stack.url)).items()}
    assert read.get("archive") == len(mine) and read.get("probe") == 1
    assert read.get("log", 0.0) <= 2  # what arrived after the archive's head: here at most the gateways' markers
    await screen.drop()
    await watching.drop()


async def _at_least(value: Awaitable[int], least: int) -> bool:
    return await value >= least


async def test_a_position_from_another_epoch_or_beyond_the_head_is_not_recovered(
    org: str, http: aiohttp.ClientSession, stack: Stack
) -> None:
    screen = ResumingScreen(http, stack.url, org)
    first = await screen.connect(resume=False)
    assert first["recovered"] is False and isinstance(first["epoch"], str) and isinstance(first["position"], int)
    await screen.drop()
    screen.epoch = "another-epoch"
    assert (await screen.connect())["recovered"] is False
    await screen.drop()
    screen.epoch, screen.position = first["epoch"], first["position"] + 1_000_000
    welcome = await screen.connect()
    assert welcome["recovered"] is False and welcome["position"] < first["position"] + 1_000_000
    await screen.drop()
    screen.epoch, screen.position = first["epoch"], first["position"]
    assert (await screen.connect())["recovered"] is True  # and the same position, still held, is
    await screen.drop()


@pytest.fixture(scope="module")
async def small_log(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Stack, infra_mod.Infra]]:
    """A deployment of its own (only a gateway) whose log keeps about 20 kB in segments of 4 kB."""
    infra = await infra_mod.provision()
    small = Stack(
        {**infra.env(), **STACK_ENV, "EVENT_LOG_MAX_BYTES": "20000", "EVENT_LOG_SEGMENT_BYTES": "4000"},
        tmp_path_factory.mktemp("small-log"),
    )
    try:
        small.start("gateway")
        await small.wait_gateway_ready()
        yield small, infra
    finally:
        small.stop_all()
        await infra_mod.release(infra)


async def test_a_position_older_than_the_retention_is_not_recovered(
    small_log: tuple[Stack, infra_mod.Infra], http: aiohttp.ClientSession
) -> None:
    small, infra = small_log
    org = "org-retention"
    screen = ResumingScreen(http, small.url, org)
    await screen.connect()
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        await publish_events(await connection.channel(), [envelope(org, n=0)])
        await eventually(lambda: screen.events, 20, what="the first event")
        oldest = dict(epoch=screen.epoch, position=screen.position)
        channel = await connection.channel()
        # In steps: a reader further behind than the whole retention (20 kB here) would lose what it dropped.
        for start in range(1, 401, 20):
            await publish_events(channel, [envelope(org, n=i, pad="x" * 200) for i in range(start, start + 20)])
            await eventually(lambda start=start: len(screen.events) >= start + 20, 20, what="the events live")
        assert len(screen.events) == 401
        await screen.drop()
    recent = dict(epoch=screen.epoch, position=screen.position)
    screen.epoch, screen.position = oldest["epoch"], oldest["position"]
    assert (await screen.connect())["recovered"] is False
    await screen.drop()
    screen.epoch, screen.position = recent["epoch"], recent["position"]
    assert (await screen.connect())["recovered"] is True  # what the log still holds is recovered
    await screen.drop()
    # Positions have holes (each segment's tracking chunk takes one): the position right before one is still held
    # (a check of the position after it would find it gone). The newest hole: an older one may lie in the oldest
    # segment, which the retention (20 kB, ~30 of these records) may drop at any time.
    held = [e["position"] for e in screen.events if e["position"] >= recent["position"] - 30]  # (4 kB segments)
    before_hole = [a for a, b in itertools.pairwise(held) if b == a + 2][-1]
    screen.position, count = before_hole, len(screen.events)
    assert (await screen.connect())["recovered"] is True
    await eventually(lambda: len(screen.events) > count, 20, what="the events after the hole")
    assert screen.events[count]["position"] == before_hole + 2
    await screen.drop()


async def test_a_log_deleted_and_declared_again_is_a_new_epoch(
    small_log: tuple[Stack, infra_mod.Infra], http: aiohttp.ClientSession
) -> None:
    small, infra = small_log
    org = "org-recreated"
    screen = ResumingScreen(http, small.url, org)
    before = await screen.connect()
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete("events.log")
        await eventually(lambda: screen.closed, 30, what="the gateway to close its screens on a new log")
        assert screen.close_code == 1013
        await small.wait_gateway_ready()
        after = await screen.connect()  # resumes with the old epoch's position
        assert after["recovered"] is False and after["epoch"] != before["epoch"]
        await publish_events(channel, [envelope(org, n=1)])
        await eventually(lambda: screen.events, 20, what="an event of the new log")
        assert screen.events[0]["epoch"] == after["epoch"]
    await screen.drop()


async def test_a_peer_that_answers_no_ping_is_closed_and_a_live_one_hears_pings(
    org: str, http: aiohttp.ClientSession, own_gateway: tuple[Stack, str]
) -> None:
    _, url = own_gateway
    async with http.ws_connect(url.replace("http", "ws") + "/ws", autoping=False) as dead:
        await dead.send_json({"type": "hello", "token": issue(TEST_SECRET, org, "u"), "topics": ["#"]})
        started = time.monotonic()

        async def closed() -> bool:
            message = await dead.receive(timeout=10)
            return message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

        await eventually(closed, 10, 0, "the server to close a peer that never answers its pings")
        assert time.monotonic() - started < 10
    pings: list[dict] = []
    async with http.ws_connect(url.replace("http", "ws") + "/ws") as alive:
        await alive.send_json({"type": "hello", "token": issue(TEST_SECRET, org, "u"), "topics": ["#"]})
        while len(pings) < 2:
            frame = await alive.receive_json(timeout=10)
            if frame["type"] == "ping":
                pings.append(frame)
        assert not alive.closed  # answering protocol pings (aiohttp's autoping) keeps it open


async def hello(http: aiohttp.ClientSession, url: str, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url.replace("http", "ws") + "/ws")
    await ws.send_json({"type": "hello", "token": token, "topics": ["#"]})
    assert (await ws.receive_json(timeout=10))["type"] == "welcome"
    return ws


async def next_close(ws: aiohttp.ClientWebSocketResponse, timeout: float = 15) -> tuple[int, str]:
    while True:
        message = await ws.receive(timeout=timeout)
        if message.type == aiohttp.WSMsgType.CLOSE:
            return message.data, message.extra
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a close frame, got {message}")


async def test_a_token_that_expires_closes_the_socket_unless_refreshed(
    api: Api, org: str, http: aiohttp.ClientSession, stack: Stack
) -> None:
    expiring = await hello(http, stack.url, issue(TEST_SECRET, org, "viewer", ttl_seconds=2))
    assert (await next_close(expiring))[0] == 4401
    refreshed = await hello(http, stack.url, issue(TEST_SECRET, org, "viewer", ttl_seconds=2))
    deadline = time.time() + 2
    await refreshed.send_json({"type": "refresh", "token": issue(TEST_SECRET, org, "viewer", ttl_seconds=600)})
    frame = await refreshed.receive_json(timeout=10)
    assert frame["type"] == "refreshed" and frame["expires_at"] > time.time() + 500
    await eventually(lambda: time.time() > deadline + 1, 10, what="the first token's expiry to pass")
    lead = (await api.create_lead())["id"]
    while True:  # still open, and still delivering, after the first token would have expired
        frame = await refreshed.receive_json(timeout=15)
        if frame["type"] == "event" and frame["data"].get("leadId") == lead:
            break
    await refreshed.close()


async def test_a_refresh_for_another_principal_or_an_invalid_token_closes(
    org: str, http: aiohttp.ClientSession, stack: Stack
) -> None:
    ws = await hello(http, stack.url, issue(TEST_SECRET, org, "viewer"))
    await ws.send_json({"type": "refresh", "token": issue(TEST_SECRET, f"{org}-x", "viewer")})
    assert (await next_close(ws))[0] == 4403
    ws = await hello(http, stack.url, issue(TEST_SECRET, org, "viewer"))
    await ws.send_json({"type": "refresh", "token": issue(TEST_SECRET, org, "someone-else")})
    assert (await next_close(ws))[0] == 4403
    ws = await hello(http, stack.url, issue(TEST_SECRET, org, "viewer"))
    await ws.send_json({"type": "refresh", "token": "not a token"})
    assert (await next_close(ws))[0] == 4401


async def test_a_system_reading_the_log_straight_from_the_broker_catches_up_from_its_own_position(
    org: str, infra: infra_mod.Infra, amqp: aio_pika.abc.AbstractChannel, http: aiohttp.ClientSession, stack: Stack
) -> None:
    """The documented example (docs/examples/follow_log.py), run as a subscriber that was down."""
    import json
    import sys

    from tests.support.stack import ROOT

    screen = ResumingScreen(http, stack.url, org)
    start = (await screen.connect())["position"] + 1
    await screen.drop()
    missed = [envelope(org, n=i) for i in range(30)]
    await publish_events(amqp, missed)
    follower = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "docs/examples/follow_log.py"),
        infra.amqp_url,
        str(start),
        "400",
        stdout=asyncio.subprocess.PIPE,
    )
    seen: list[dict] = []
    try:
        async with asyncio.timeout(60):
            while not {e["id"] for e in missed} <= {e["id"] for e in seen}:
                seen.append(json.loads(await follower.stdout.readline()))  # type: ignore[union-attr]
    finally:
        follower.kill()
        await follower.wait()
    mine = [e for e in seen if e["org_id"] == org]
    assert [e["id"] for e in mine] == [e["id"] for e in missed]
    assert all(e["position"] >= start for e in seen)


async def test_a_screen_too_slow_for_its_queue_is_closed_and_resumes_without_loss(
    org: str, http: aiohttp.ClientSession, stack: Stack, amqp: aio_pika.abc.AbstractChannel
) -> None:
    port = free_port()
    stack.start("gateway-small-queue", "services.gateway", GATEWAY_PORT=str(port), WS_QUEUE_SIZE="20")
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(url + "/readyz", 30, "the small-queue gateway")
        slow = ResumingScreen(http, url, org, ["tests.*"])
        await slow.connect()
        slow._pump.cancel()  # type: ignore[union-attr]  # stops reading: TCP buffers fill, then its queue
        burst = [envelope(org, n=i, pad="x" * 2000) for i in range(4_000)]
        await publish_events(amqp, burst)
        slow._pump = asyncio.create_task(slow._read(slow.ws))  # type: ignore[arg-type]  # reads again
        await eventually(lambda: slow.closed, 60, what="the slow screen to be closed")
        assert slow.close_code == 1013 and len(slow.events) < len(burst)
        assert (await slow.connect())["recovered"] is True
        await eventually(lambda: len(slow.events) >= len(burst), 60, 0.1, what="the rest after the resume")
        assert_once_in_order(slow.events, [e["id"] for e in burst])
        await slow.drop()
    finally:
        stack.processes["gateway-small-queue"].stop()
