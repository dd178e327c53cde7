"""Change events over the websocket: own organisation only, matching topics only."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import aiohttp

from services.gateway.auth import issue
from tests.conftest import Api
from tests.support.stack import TEST_SECRET, eventually


class Screen:
    """One open screen: a websocket and what it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws, self.frames = ws, []

    async def pump(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(message.data))

    def events(self, topic: str | None = None) -> list[dict]:
        return [f for f in self.frames if f["type"] == "event" and (topic is None or f["topic"] == topic)]


@asynccontextmanager
async def screen(api: Api, org: str, topics: list[str]) -> AsyncIterator[Screen]:
    import asyncio

    async with api.http.ws_connect(api.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_json({"type": "hello", "token": issue(TEST_SECRET, org, "viewer"), "topics": topics})
        welcome = await ws.receive_json(timeout=10)
        assert welcome["type"] == "welcome"
        opened = Screen(ws)
        pump = asyncio.create_task(opened.pump())
        try:
            yield opened
        finally:
            pump.cancel()


async def test_a_status_change_reaches_every_open_screen_of_its_organisation(api: Api, org: str) -> None:
    lead = (await api.create_lead())["id"]
    async with screen(api, org, ["leads.*"]) as first, screen(api, org, ["leads.status_changed"]) as second:
        status, _, _ = await api.post("/api/leads/update-status", {"leadId": lead, "status": "contacted"})
        assert status == 200
        for opened in (first, second):
            (event,) = await eventually(lambda o=opened: o.events("leads.status_changed"), 10, what="the event")
            assert event["data"]["leadId"] == lead
            assert (event["data"]["from"], event["data"]["to"], event["data"]["by"]) == ("new", "contacted", "agent-1")
            assert event["data"]["changedAt"] and event["id"] and "position" in event


async def test_events_never_reach_another_organisation(api: Api, org: str) -> None:
    other = f"other-{uuid4().hex[:6]}"
    other_api = api.as_user(other)
    async with screen(api, org, ["#"]) as mine, screen(api, other, ["#"]) as theirs:
        lead = (await api.create_lead("Mine"))["id"]
        await eventually(lambda: mine.events("leads.created"), 10, what="my own event")
        # The other organisation's own event is a barrier: events reach a gateway in order,
        # so once it arrived, my earlier event would have arrived too if it leaked.
        their_lead = (await other_api.create_lead("Theirs"))["id"]
        await eventually(lambda: theirs.events("leads.created"), 10, what="their own event")
        assert [e["data"]["leadId"] for e in theirs.events()] == [their_lead]
        assert [e["data"]["leadId"] for e in mine.events()] == [lead]


async def test_a_screen_gets_only_the_topics_it_asked_for(api: Api, org: str) -> None:
    async with screen(api, org, ["leads.status_changed"]) as opened:
        lead = (await api.create_lead())["id"]
        await api.post("/api/leads/update-status", {"leadId": lead, "status": "lost"})
        await eventually(lambda: opened.events("leads.status_changed"), 10, what="the status event")
        assert opened.events("leads.created") == []


async def closed_with(api: Api, first_message: str | bytes | None) -> tuple[int, str]:
    """The server's close code and reason after `first_message` (ws.close_code may say 1006 if our reply
    found it gone)."""
    async with api.http.ws_connect(api.url.replace("http", "ws") + "/ws") as ws:
        if isinstance(first_message, bytes):
            await ws.send_bytes(first_message)
        elif first_message is not None:
            await ws.send_str(first_message)
        message = await ws.receive(timeout=15)
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        return message.data, message.extra


async def close_code(api: Api, first_message: str | None) -> int | None:
    return (await closed_with(api, first_message))[0]


async def test_a_bad_or_missing_token_closes_with_4401(api: Api, org: str) -> None:
    assert await close_code(api, json.dumps({"type": "hello", "topics": ["#"]})) == 4401
    assert await close_code(api, json.dumps({"type": "hello", "token": "nope", "topics": ["#"]})) == 4401
    forged = issue("f" * 40, org, "u")
    assert await close_code(api, json.dumps({"type": "hello", "token": forged, "topics": ["#"]})) == 4401


async def test_no_hello_in_time_closes_with_4408(api: Api, stack) -> None:  # type: ignore[no-untyped-def]
    from tests.support.stack import free_port

    port = free_port()
    quick = stack.start("gateway-quick-hello", "services.gateway", GATEWAY_PORT=str(port), WS_HELLO_TIMEOUT="0.5")
    try:
        other = Api(api.http, f"http://127.0.0.1:{port}", api.token)

        async def connected() -> int | None:
            try:
                return await close_code(other, None)
            except aiohttp.ClientError:
                return None

        assert await eventually(connected, 20, 0.1, "the quick gateway") == 4408
    finally:
        quick.stop()


async def test_an_expired_or_unreadable_token_in_the_hello_closes_with_4401(api: Api, org: str) -> None:
    import time

    import jwt

    # Expired past the gateway's leeway for clock skew (JWT_LEEWAY_SECONDS, 30).
    expired = jwt.encode({"sub": "u", "org": org, "exp": int(time.time()) - 45}, TEST_SECRET, algorithm="HS256")
    assert await close_code(api, json.dumps({"type": "hello", "token": expired, "topics": ["#"]})) == 4401
    assert await close_code(api, json.dumps({"type": "hello", "token": "\ud800", "topics": ["#"]})) == 4401


async def test_a_malformed_hello_closes_with_4400(api: Api) -> None:
    assert await close_code(api, "not json") == 4400
    assert await close_code(api, json.dumps({"type": "subscribe"})) == 4400
    assert await close_code(api, json.dumps({"type": "hello", "token": "t", "topics": "leads.*"})) == 4400


async def test_two_gateways_side_by_side_each_deliver_every_event(api: Api, org: str, stack) -> None:  # type: ignore[no-untyped-def]
    from tests.support.stack import free_port

    port = free_port()
    second = stack.start("gateway-2", "services.gateway", GATEWAY_PORT=str(port))
    try:
        other = Api(api.http, f"http://127.0.0.1:{port}", api.token)

        async def ready() -> bool:
            try:
                async with api.http.get(other.url + "/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, 20, 0.1, "the second gateway")
        async with screen(api, org, ["leads.*"]) as first, screen(other, org, ["leads.*"]) as there:
            lead = (await api.create_lead())["id"]
            for opened in (first, there):
                (event,) = await eventually(lambda o=opened: o.events("leads.created"), 10, what="the event")
                assert event["data"]["leadId"] == lead
    finally:
        second.stop()
