"""One socket's protocol in process (services/gateway/ws/protocol.py): a refused origin, a log that is not
readable, and what becomes of the socket's tasks when it ends. The hello's refusals are tested end to end
(tests/e2e/test_websocket.py)."""

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from structlog.testing import capture_logs

from services.gateway import errors
from services.gateway.auth import issue
from services.gateway.ws import Hub
from services.gateway.ws.protocol import _end
from shared.problems import OriginRefused

SECRET = "s" * 40


class ReaderAt:
    """A live reader at the head of a log (its replay is never asked for: a hello without a resume)."""

    def __init__(self, ready: bool) -> None:
        self.epoch, self.head = "e1", 41
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()


async def client_of(hub: Hub) -> TestClient:
    app = web.Application(middlewares=[errors.problems])
    app.router.add_get("/ws", hub.handle)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def open_hub() -> AsyncIterator[Hub]:
    hub = Hub(SECRET, queue_size=10, hello_timeout=0.3, allowed_origins={"https://crm.example"})
    yield hub
    await hub.close_all()


async def test_a_refused_origin_is_the_origin_refusal(open_hub: Hub) -> None:
    request = make_mocked_request("GET", "/ws", headers={"Origin": "https://elsewhere.example"})
    with pytest.raises(OriginRefused) as refused:
        await open_hub.handle(request)
    assert (refused.value.status, refused.value.type) == (403, "/problems/origin")
    assert "'https://elsewhere.example' may not open a websocket here" in refused.value.body["detail"]


@pytest.mark.parametrize("origin", [None, "", "https://" + "a" * 8000, "https://crm.example.evil", "null"])
async def test_a_missing_or_hostile_origin_is_refused_and_not_echoed_whole(open_hub: Hub, origin: str | None) -> None:
    request = make_mocked_request("GET", "/ws", headers={} if origin is None else {"Origin": origin})
    with pytest.raises(OriginRefused) as refused:
        await open_hub.handle(request)
    assert refused.value.status == 403 and len(refused.value.body["detail"]) < 200


async def test_a_refused_origin_is_answered_403_with_its_problem(open_hub: Hub) -> None:
    """Through the gateway's `problems` middleware: it answers any `shared.problems.Rejected` with its body."""
    client = await client_of(open_hub)
    try:
        response = await client.get("/ws", headers={"Origin": "https://elsewhere.example"})
        body = await response.json(content_type=None)
        assert (response.status, response.content_type) == (403, "application/problem+json"), body
        assert (body["type"], body["title"]) == ("/problems/origin", "Forbidden")
    finally:
        await client.close()


@pytest.mark.parametrize("ready", [True, False])
async def test_a_hello_is_welcomed_only_once_the_log_is_readable(open_hub: Hub, ready: bool) -> None:
    open_hub.reader = ReaderAt(ready)  # type: ignore[assignment]  # a fake: what the socket reads of a Reader
    client = await client_of(open_hub)
    try:
        async with client.ws_connect("/ws", headers={"Origin": "https://crm.example"}) as ws:
            await ws.send_json({"type": "hello", "token": issue(SECRET, "org", "u"), "topics": ["#"]})
            message = await ws.receive(timeout=5)
            if ready:
                welcome = json.loads(message.data)
                assert (welcome["type"], welcome["recovered"], welcome["position"]) == ("welcome", False, 41)
            else:
                assert message.type == aiohttp.WSMsgType.CLOSE
                assert (message.data, message.extra) == (1011, "the event log is unavailable: try again")
    finally:
        await client.close()


async def test_a_task_that_fails_other_than_by_a_vanished_client_is_logged_with_its_traceback() -> None:
    async def failing(error: Exception) -> None:
        await asyncio.sleep(0)
        raise error

    with capture_logs() as logged:
        for error in (ConnectionResetError("Cannot write to closing transport"), RuntimeError("a bug")):
            task = asyncio.create_task(failing(error), name="ws.send")
            await asyncio.wait({task})  # it has failed before the socket ends
            await _end(task)
    assert [(line["event"], line["task"], line.get("exc_info")) for line in logged] == [
        ("ws.task_failed", "ws.send", True)
    ]  # the goodbye is not logged; the bug is
