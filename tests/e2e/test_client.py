"""The Python client (clients/python) against the real stack: one key per press, retries,
refusals, a 202 followed, the SMS breaker, the command line."""

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from uuid import uuid4

import aiohttp
import asyncpg
import crm_client
import pytest
from aiohttp import web
from crm_client import problems

from tests.conftest import Api
from tests.support.infra import Infra
from tests.support.sandbox import Sandbox
from tests.support.stack import ROOT, Stack, eventually, free_port

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}


class Proxy:
    """The gateway behind a switch the test holds: forward; forward a POST but lose its answer
    (the gateway did the work, the client never hears); or be down (connections refused)."""

    def __init__(self, upstream: str):
        self.upstream, self.port = upstream, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[tuple[str, str, str | None]] = []  # method, path, Idempotency-Key
        self.lose_answers = 0
        self.down = False

    async def start(self) -> "Proxy":
        self.session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await self.up()
        return self

    async def up(self) -> None:
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await self.site.start()
        self.down = False

    async def go_down(self) -> None:
        self.down = True
        await self.site.stop()

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.session.close()

    def posts(self, path: str | None = None) -> list[tuple[str, str, str | None]]:
        return [s for s in self.seen if s[0] == "POST" and (path is None or s[1] == path)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:  # a kept-alive connection: as if the gateway had gone
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("proxy down")
        body = await request.read()
        self.seen.append((request.method, request.path_qs, request.headers.get("Idempotency-Key")))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self.session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers, allow_redirects=False
        ) as answer:
            data = await answer.read()
            back = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            status = answer.status
        if request.method == "POST" and self.lose_answers > 0:
            self.lose_answers -= 1
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("answer lost on purpose")
        return web.Response(status=status, body=data, headers=back)


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[Proxy]:
    running = await Proxy(stack.url).start()
    yield running
    await running.stop()


async def status_history(infra: Infra, lead: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(infra.database_url)
    try:
        rows = await conn.fetch(
            "SELECT from_status, to_status FROM leads.lead_status_history WHERE lead_id = $1 ORDER BY id", lead
        )
    finally:
        await conn.close()
    return [(r["from_status"], r["to_status"]) for r in rows]


def fast(url: str, token: str, **kw: object) -> crm_client.Client:
    """Short backoff: the tests wait on conditions, and the client on the stack, not on the clock."""
    return crm_client.Client(url, token, **{"backoff": 0.05, "backoff_max": 0.5, **kw})  # type: ignore[arg-type]


# One key per press --------------------------------------------------------------
async def test_a_lost_answer_is_retried_with_the_same_key_and_applied_once(
    api: Api, proxy: Proxy, infra: Infra
) -> None:
    lead = (await api.create_lead())["id"]
    proxy.lose_answers = 1
    async with fast(proxy.url, api.token) as client:
        body = await client.update_lead_status(lead, "contacted")
    assert body["lead"]["status"] == "contacted"
    (first, second) = proxy.posts("/api/leads/update-status")
    assert first[2] and first[2] == second[2]
    assert await status_history(infra, lead) == [("new", "contacted")]


async def test_a_lead_created_through_a_lost_answer_exists_once(api: Api, proxy: Proxy) -> None:
    proxy.lose_answers = 2
    async with fast(proxy.url, api.token) as client:
        body = await client.create_lead("Ada Once", "+14155550142", email="ada@example.com")
    assert body["lead"]["phone"] == "+14155550142"
    assert len({key for _, _, key in proxy.posts("/api/leads")}) == 1 and len(proxy.posts("/api/leads")) == 3
    status, _, listed = await api.get("/api/leads?limit=200")
    assert status == 200 and [lead["id"] for lead in listed["leads"]] == [body["lead"]["id"]]


async def test_two_presses_get_two_keys(api: Api, proxy: Proxy) -> None:
    lead = (await api.create_lead())["id"]
    async with fast(proxy.url, api.token) as client:
        await client.update_lead_status(lead, "contacted")
        await client.update_lead_status(lead, "qualified")
    keys = [key for _, _, key in proxy.posts("/api/leads/update-status")]
    assert len(keys) == 2 and len(set(keys)) == 2


# Refusals: typed, with their problem, never retried -----------------------------
async def test_domain_refusals_raise_typed_errors_and_are_not_retried(api: Api, proxy: Proxy) -> None:
    lead = (await api.create_lead())["id"]
    async with fast(proxy.url, api.token) as client:
        await client.update_lead_status(lead, "won")
        with pytest.raises(crm_client.Conflict) as conflict:
            await client.update_lead_status(lead, "new")
        with pytest.raises(crm_client.NotFound) as missing:
            await client.update_lead_status(str(uuid4()), "contacted")
        with pytest.raises(crm_client.Invalid) as invalid:
            await client.create_lead("No Phone", "not a phone")
        with pytest.raises(crm_client.Conflict):
            await client.update_lead_status(lead, "won", expected_status="new")
    assert conflict.value.status == 409 and "won" in conflict.value.problem["detail"]
    assert missing.value.status == 404 and missing.value.problem["status"] == 404
    assert invalid.value.status == 422 and invalid.value.problem["errors"]
    assert isinstance(conflict.value, crm_client.Refused)
    assert len(proxy.posts()) == 5  # one send each: nothing was retried


async def test_a_bad_token_is_unauthorized(stack: Stack) -> None:
    async with fast(stack.url, "not-a-token") as client:
        with pytest.raises(crm_client.Unauthorized) as refused:
            await client.create_lead("Ada", "+14155550100")
    assert refused.value.status == 401
    assert isinstance(refused.value, problems.Unauthorized) and refused.value.type == "/problems/unauthorized"


async def test_each_refusal_arrives_as_its_own_class(api: Api, stack: Stack) -> None:
    lead = (await api.create_lead())["id"]
    async with fast(stack.url, api.token) as client:
        await client.update_lead_status(lead, "won")
        with pytest.raises(problems.ForbiddenMove) as forbidden:
            await client.update_lead_status(lead, "new")
        with pytest.raises(problems.StatusConflict) as moved:
            await client.update_lead_status(lead, "lost", expected_status="new")
        with pytest.raises(problems.NotFound):
            await client.get_lead(str(uuid4()))
        with pytest.raises(problems.Invalid) as invalid:
            await client.create_lead("No Phone", "not a phone")
        with pytest.raises(crm_client.NotFound) as no_route:  # the framework's own 404: no class of ours
            await client.http.query("/api/no-such-thing")
    assert isinstance(forbidden.value, crm_client.Conflict) and forbidden.value.status == 409
    assert forbidden.value.type == "/problems/forbidden-status-change" and "won" in forbidden.value.detail
    assert moved.value.body["status"] == 409 and isinstance(moved.value, crm_client.Refused)
    assert invalid.value.body["errors"] and isinstance(invalid.value, crm_client.Invalid)
    assert type(no_route.value) is crm_client.NotFound and no_route.value.type == "about:blank"


async def test_a_service_that_does_not_answer_is_unavailable_after_the_retries(api: Api, stack: Stack) -> None:
    lead = (await api.create_lead())["id"]
    stack.processes["leads"].stop()
    try:
        async with fast(stack.url, api.token, attempts=2) as client:
            with pytest.raises(problems.Unavailable) as unavailable:
                await client.get_lead(lead)
    finally:
        stack.start("leads")
        await stack.wait_started("leads")
    assert isinstance(unavailable.value, crm_client.Unreachable)  # what the client raised for it before
    assert unavailable.value.status == 503 and unavailable.value.type == "/problems/unavailable"


async def test_the_other_buttons_and_reads(api: Api, stack: Stack, sandbox: Sandbox) -> None:
    async with fast(stack.url, api.token) as client:
        leads = [
            (await client.create_lead(f"Lead {i}", f"+1415555{uuid4().int % 10000:04d}"))["lead"]["id"]
            for i in range(2)
        ]
        bulk = await client.bulk_update_lead_status(leads, "qualified")
        assert bulk["updated"] == 2 and bulk["failed"] == []
        booked = await client.create_appointment(leads[0], "2030-01-02T15:00:00Z", duration_minutes=45, title="Intro")
        appointment = booked["appointment"]
        assert (appointment["duration_minutes"], appointment["title"]) == (45, "Intro")
        confirmed = await client.confirm_booking(appointment["id"], confirmed_by="alice", notes="ok")
        assert confirmed["appointment"]["status"] == "confirmed"
        assert (await client.get_appointment(appointment["id"]))["appointment"]["confirmed_by"] == "alice"
        sent = await client.send_sms(leads[1], "Hello from the client")
        assert sent["sms"]["status"] == "sent"
        history = await client.sms_history(leads[1])
        assert [m["body"] for m in history["sms_messages"]] == ["Hello from the client"]
        with pytest.raises(crm_client.Conflict):
            await client.bulk_update_lead_status([leads[0], str(uuid4())], "won")


# 202 followed -------------------------------------------------------------------
async def test_an_accepted_command_is_followed_to_its_final_answer(
    api: Api, proxy: Proxy, stack: Stack, infra: Infra
) -> None:
    lead = (await api.create_lead())["id"]
    stack.processes["leads"].stop()
    try:
        async with fast(proxy.url, api.token, follow_time=120) as client:
            press = asyncio.create_task(client.update_lead_status(lead, "won"))
            await eventually(
                lambda: any(s[1].startswith("/api/commands/leads/") for s in proxy.seen) or press.done(),
                30,
                0.1,
                "the client to follow a 202",
            )
            assert not press.done(), press
            stack.start("leads")
            await stack.wait_started("leads")
            body = await asyncio.wait_for(press, 120)
    finally:
        if not stack.processes["leads"].running:
            stack.start("leads")
            await stack.wait_started("leads")
    assert body["lead"]["status"] == "won"
    assert [s[0] for s in proxy.seen].count("POST") == 1
    assert await status_history(infra, lead) == [("new", "won")]


async def test_a_gateway_that_stays_away_is_unreachable(api: Api) -> None:
    async with fast(f"http://127.0.0.1:{free_port()}", api.token, attempts=3) as client:
        with pytest.raises(crm_client.Unreachable) as away:
            await client.create_lead("Ada", "+14155550100")
    assert away.value.status is None


# The SMS breaker ----------------------------------------------------------------
async def test_the_sms_breaker_opens_on_provider_down_answers_then_lets_a_trial_through(
    api: Api, proxy: Proxy, sandbox: Sandbox
) -> None:
    lead = (await api.create_lead("Grace Hopper", f"+1415555{uuid4().int % 10000:04d}"))["id"]
    await sandbox.behave(mode="error", status=503, count=100_000)
    async with fast(proxy.url, api.token, sms_breaker_threshold=2, sms_breaker_cooldown=1.0) as client:
        for _ in range(2):
            assert (await client.send_sms(lead, "are you there?"))["sms"]["status"] == "queued"
        sent_before = len(proxy.posts("/api/leads/send-sms"))
        with pytest.raises(crm_client.CircuitOpen):
            await client.send_sms(lead, "fail fast")
        assert len(proxy.posts("/api/leads/send-sms")) == sent_before  # failed fast: never sent
        assert await client.breaker.state() == "opened"

        await sandbox.behave(mode="ok")

        async def a_trial_is_sent() -> bool:
            try:
                return (await client.send_sms(lead, "back?"))["sms"]["status"] == "sent"
            except crm_client.CircuitOpen:
                return False

        await eventually(a_trial_is_sent, 90, 0.2, "a trial SMS to be sent once the provider is back")
        assert await client.breaker.state() == "closed"
        assert (await client.send_sms(lead, "closed again"))["sms"]["status"] == "sent"


async def test_sms_refusals_do_not_open_the_breaker(api: Api, sandbox: Sandbox, stack: Stack) -> None:
    opted_out = (await api.create_lead("Opted Out", "+15005550004"))["id"]
    async with fast(stack.url, api.token, sms_breaker_threshold=1) as client:
        for _ in range(2):
            with pytest.raises(crm_client.Conflict):
                await client.send_sms(opted_out, "hi")
        assert await client.breaker.state() == "closed"


# The command line ---------------------------------------------------------------
async def crm(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict], str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crm_client",
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, [json.loads(line) for line in out.decode().splitlines() if line.strip()], err.decode()


async def test_the_command_line_presses_buttons_and_maps_exit_codes(api: Api, stack: Stack) -> None:
    env = {"CRM_URL": stack.url, "CRM_TOKEN": api.token}
    code, (created,), _ = await crm(
        "lead", "create", "Ada Lovelace", "(415) 555-0100", "--email", "a@example.com", env=env
    )
    assert code == 0 and created["lead"]["phone"] == "+14155550100"
    lead = created["lead"]["id"]
    code, (moved,), _ = await crm("--url", stack.url, "--token", api.token, "lead", "status", lead, "won")
    assert code == 0 and moved["lead"]["status"] == "won"
    code, (problem,), _ = await crm("lead", "status", lead, "new", env=env)
    assert code == 1 and problem["status"] == 409 and "won" in problem["detail"]
    code, (problem,), _ = await crm("lead", "status", lead, "lost", "--expected", "new", env=env)
    assert code == 1 and problem["status"] == 409
    other = (await api.create_lead())["id"]
    code, (bulk,), _ = await crm("lead", "bulk-status", "contacted", other, env=env)
    assert code == 0 and bulk["updated"] == 1
    code, (problem,), _ = await crm("lead", "create", "Bad", "not a phone", env=env)
    assert code == 1 and problem["status"] == 422


async def test_the_command_line_confirms_a_booking_and_sends_an_sms(api: Api, stack: Stack, sandbox: Sandbox) -> None:
    env = {"CRM_URL": stack.url, "CRM_TOKEN": api.token}
    lead = (await api.create_lead("Grace", f"+1415555{uuid4().int % 10000:04d}"))["id"]
    status, _, booked = await api.post("/api/appointments", {"leadId": lead, "startsAt": "2030-01-02T15:00:00Z"})
    assert status == 201, booked
    code, (confirmed,), _ = await crm("booking", "confirm", booked["appointment"]["id"], "--send-sms", env=env)
    assert code == 0 and confirmed["appointment"]["status"] == "confirmed"
    code, (sent,), _ = await crm("sms", "send", lead, "See you tomorrow!", env=env)
    assert code == 0 and sent["sms"]["status"] == "sent"
    code, (missing,), _ = await crm("sms", "send", str(uuid4()), "hi", env=env)
    assert code == 1 and missing["status"] == 404


async def test_command_line_usage_errors_and_an_unreachable_gateway(api: Api) -> None:
    assert (await crm("lead", "status", env={"CRM_URL": "http://x", "CRM_TOKEN": "t"}))[0] == 2
    assert (await crm("lead", "create", "A", "+14155550100", env={"CRM_URL": "", "CRM_TOKEN": ""}))[0] == 2
    assert (await crm("pending", env={"CRM_URL": "http://x", "CRM_TOKEN": "t", "CRM_OFFLINE_DB": ""}))[0] == 2
    away = f"http://127.0.0.1:{free_port()}"
    code, (problem,), _ = await crm(
        "--url",
        away,
        "--token",
        api.token,
        "--attempts",
        "2",
        "lead",
        "create",
        "A",
        "+14155550100",
        env={"CRM_OFFLINE_DB": ""},
    )
    assert code == 4 and problem["type"] == "/problems/unreachable"


async def test_the_command_line_queues_offline_then_flushes(api: Api, proxy: Proxy, tmp_path, infra: Infra) -> None:
    lead = (await api.create_lead())["id"]
    env = {
        "CRM_URL": proxy.url,
        "CRM_TOKEN": api.token,
        "CRM_OFFLINE_DB": str(tmp_path / "queue.db"),
        "CRM_ATTEMPTS": "2",
    }
    await proxy.go_down()
    code, (queued,), _ = await crm("lead", "status", lead, "contacted", env=env)
    assert code == 3 and queued["queued"]["body"] == {"leadId": lead, "status": "contacted"}
    code, (queued_too,), _ = await crm("lead", "status", lead, "qualified", env=env)
    assert code == 3
    code, listed, _ = await crm("pending", env=env)
    assert code == 0 and [q["queued"]["key"] for q in listed] == [queued["queued"]["key"], queued_too["queued"]["key"]]
    assert (await crm("flush", env=env))[0] == 3  # still away: still pending
    await proxy.up()
    code, settled, _ = await crm("flush", env=env)
    assert code == 0 and [(o["outcome"]["state"], o["outcome"]["status"]) for o in settled] == [("done", 200)] * 2
    assert (await crm("pending", env=env))[1] == []
    assert await status_history(infra, lead) == [("new", "contacted"), ("contacted", "qualified")]


# Events: subscribe, resume ------------------------------------------------------
class TcpProxy:
    """Bytes both ways, for the websocket: `cut()` breaks every open connection (the network
    dropped); `freeze()` keeps them open but passes nothing more (a dead peer)."""

    def __init__(self, upstream_port: int):
        self.upstream_port, self.port = upstream_port, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.frozen: set[asyncio.StreamWriter] = set()
        self.opened = 0

    async def start(self) -> "TcpProxy":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        self.cut()
        self.server.close()
        await self.server.wait_closed()

    def cut(self) -> None:
        for client, upstream in self.connections:
            client.transport.abort()
            upstream.transport.abort()
        self.connections.clear()

    def freeze(self) -> None:
        self.frozen.update(client for client, _ in self.connections)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.connections.append((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    if writer in self.frozen:
                        continue  # swallowed: the peer seems alive at the TCP level, and says nothing
                    sink.write(chunk)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def tcp_proxy(stack: Stack) -> AsyncIterator[TcpProxy]:
    running = await TcpProxy(stack.port).start()
    yield running
    await running.stop()


async def next_events(stream: AsyncIterator, count: int, timeout: float = 60) -> list:
    items = []
    async with asyncio.timeout(timeout):
        while len([i for i in items if isinstance(i, crm_client.Event)]) < count:
            items.append(await anext(stream))
    return items


async def test_subscribe_gets_events_with_their_position_and_epoch(api: Api, stack: Stack) -> None:
    async with fast(stack.url, api.token) as client:
        stream = client.subscribe(["leads.*"])
        welcomed = asyncio.create_task(anext(stream))  # connects; nothing is yielded before an event

        async def a_lead_is_seen() -> bool:  # created until the live stream shows one (it may connect late)
            await api.create_lead("Eve", "+14155550123")
            await asyncio.wait({welcomed}, timeout=0.5)
            return welcomed.done()

        await eventually(a_lead_is_seen, 60, 0, "a leads.created event")
        event = welcomed.result()
        await stream.aclose()
    assert isinstance(event, crm_client.Event)
    assert event.topic == "leads.created" and event.data["name"] == "Eve"
    assert isinstance(event.position, int) and isinstance(event.epoch, str) and event.epoch


async def head(stack: Stack, token: str) -> crm_client.Resume:
    """Where the log ends now: the welcome of a socket that does not resume."""
    async with aiohttp.ClientSession() as http, http.ws_connect(stack.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_json({"type": "hello", "token": token, "topics": ["#"]})
        welcome = await ws.receive_json(timeout=20)
    return crm_client.Resume(welcome["epoch"], welcome["position"])


async def test_a_cut_connection_is_resumed_without_gap_or_duplicate(
    api: Api, stack: Stack, tcp_proxy: TcpProxy
) -> None:
    start = await head(stack, api.token)
    async with fast(tcp_proxy.url, api.token) as client:
        stream = client.subscribe(["leads.created"], resume=start)
        leads = [(await api.create_lead(f"Lead {i}", "+14155550100"))["id"] for i in range(10)]
        got = await next_events(stream, 5)
        opened = tcp_proxy.opened
        tcp_proxy.cut()
        leads += [(await api.create_lead(f"Lead {i}", "+14155550100"))["id"] for i in range(10, 20)]
        got += await next_events(stream, 15)
        await stream.aclose()
    assert tcp_proxy.opened > opened  # it did reconnect
    assert not any(isinstance(item, crm_client.Reload) for item in got)
    events = [item for item in got if isinstance(item, crm_client.Event)]
    assert [e.data["leadId"] for e in events] == leads
    positions = [e.position for e in events]
    assert positions == sorted(set(positions)) and all(p > start.position for p in positions)


async def test_a_silent_server_is_noticed_and_resumed(api: Api, stack: Stack, tcp_proxy: TcpProxy) -> None:
    start = await head(stack, api.token)
    async with fast(tcp_proxy.url, api.token, ping_interval=1.0) as client:
        stream = client.subscribe(["leads.created"], resume=start)
        first = (await api.create_lead("Before", "+14155550100"))["id"]
        got = await next_events(stream, 1)
        opened = tcp_proxy.opened
        tcp_proxy.freeze()  # open at the TCP level, dead above it
        second = (await api.create_lead("During", "+14155550100"))["id"]
        got += await next_events(stream, 1, timeout=90)
        await stream.aclose()
    assert tcp_proxy.opened > opened
    assert [e.data["leadId"] for e in got if isinstance(e, crm_client.Event)] == [first, second]


async def test_a_position_that_cannot_be_recovered_is_said_then_live_events_follow(api: Api, stack: Stack) -> None:
    async with fast(stack.url, api.token) as client:
        stream = client.subscribe(["leads.created"], resume=crm_client.Resume("no-such-epoch", 3))
        reload = await asyncio.wait_for(anext(stream), 60)
        assert isinstance(reload, crm_client.Reload) and reload.recovered is False
        lead = (await api.create_lead("After", "+14155550100"))["id"]
        (event,) = await next_events(stream, 1)
        await stream.aclose()
    assert event.data["leadId"] == lead
    assert event.epoch == reload.epoch and event.position > reload.position


async def test_the_command_line_prints_events_from_a_position(api: Api, stack: Stack) -> None:
    start = await head(stack, api.token)
    leads = [(await api.create_lead(f"Cli {i}", "+14155550100"))["id"] for i in range(3)]
    code, events, _ = await crm(
        "--url",
        stack.url,
        "--token",
        api.token,
        "events",
        "--topic",
        "leads.created",
        "--resume",
        str(start),
        "--count",
        "3",
    )
    assert code == 0
    assert [e["data"]["leadId"] for e in events] == leads
    assert all(e["epoch"] == start.epoch and e["position"] > start.position for e in events)
    assert (await crm("--url", stack.url, "--token", api.token, "events", "--resume", "nonsense"))[0] == 2
