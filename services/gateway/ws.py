"""Websockets: change events fanned out to the open screens of one organisation.

Protocol: the client's first message is
    {"type": "hello", "token": "<JWT>", "topics": ["leads.*"]}
(AMQP topic patterns: `*` one word, `#` any number). The server answers
{"type": "welcome", ...}, then sends {"type": "event", "topic", "id", "data", ...}
for each matching event of the token's organisation, never another's.

Close codes: 4400 the hello is malformed, 4401 the token is missing or not
valid, 4408 no hello within the time allowed, 1013 the client read too slowly
(its bounded queue filled up; it should reconnect and refetch), 1001 the gateway
is shutting down. A slow client is dropped instead of slowing the others.
"""
import asyncio
import json
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from services.gateway.auth import BadToken, decode
from services.gateway.errors import Problem
from shared import logging

log = logging.get("gateway.ws")
BAD_HELLO, BAD_TOKEN, HELLO_TIMEOUT, TOO_SLOW = 4400, 4401, 4408, WSCloseCode.TRY_AGAIN_LATER


@lru_cache(maxsize=4096)
def topic_matches(pattern: str, topic: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more words."""
    return _match(tuple(pattern.split(".")), tuple(topic.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    org: str
    patterns: list[str]
    queue: asyncio.Queue[str]
    slow: bool = False
    closing: asyncio.Task[None] | None = None

    def wants(self, topic: str) -> bool:
        return any(topic_matches(p, topic) for p in self.patterns)


@dataclass
class Hub:
    secret: str
    queue_size: int
    hello_timeout: float
    allowed_origins: set[str]
    clients: dict[str, set[Client]] = field(default_factory=dict)
    # Events are published at least once (an outbox relay that dies after the broker's
    # confirm publishes the row again): screens get each event id once.
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    remember: int = 10_000

    def first_time(self, event_id: object) -> bool:
        key = str(event_id)
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > self.remember:
            self.seen.popitem(last=False)
        return True

    def dispatch(self, topic: str, event: dict[str, Any]) -> None:
        if not self.first_time(event.get("id")):
            return
        org = event.get("org_id")
        clients = self.clients.get(org) if isinstance(org, str) else None
        if not clients:
            return
        frame = json.dumps({"type": "event", "topic": topic, "id": event.get("id"), "data": event.get("data"),
                            "occurred_at": event.get("occurred_at"), "command_id": event.get("command_id"),
                            "position": event.get("position")})
        for client in clients:
            if client.slow or not client.wants(topic):
                continue
            try:
                client.queue.put_nowait(frame)
            except asyncio.QueueFull:
                client.slow = True
                client.closing = asyncio.create_task(client.ws.close(code=TOO_SLOW, message=b"too slow"))

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if self.allowed_origins and origin not in self.allowed_origins:
            raise Problem(403, "Forbidden", f"origin {origin!r} may not open a websocket here", "/problems/origin")
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        client = await self._greet(ws)
        if client is None:
            return ws
        self.clients.setdefault(client.org, set()).add(client)
        sender = asyncio.create_task(self._send(client))
        try:
            async for message in ws:  # the client has nothing more to say; reading notices the close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.get(client.org, set()).discard(client)
            sender.cancel()
            # A client that vanished makes the sender fail: that is a goodbye, not an error.
            with suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await sender
        return ws

    async def _greet(self, ws: web.WebSocketResponse) -> Client | None:
        try:
            message = await ws.receive(timeout=self.hello_timeout)
        except TimeoutError:
            await ws.close(code=HELLO_TIMEOUT, message=b"no hello in time")
            return None
        try:
            hello = json.loads(message.data) if message.type == WSMsgType.TEXT else None
            assert isinstance(hello, dict) and hello.get("type") == "hello"
            topics = hello.get("topics", ["#"])
            assert isinstance(topics, list) and 0 < len(topics) <= 50
            assert all(isinstance(t, str) and 0 < len(t) <= 255 for t in topics)
        except (ValueError, AssertionError):
            await ws.close(code=BAD_HELLO, message=b"the first message must be a hello")
            return None
        try:
            principal = decode(str(hello.get("token") or ""), self.secret)
        except BadToken as exc:  # (decode turns any unreadable token into BadToken)
            await ws.close(code=BAD_TOKEN, message=str(exc).encode()[:120])
            return None
        await ws.send_json({"type": "welcome", "org": principal.org, "user": principal.user, "topics": topics})
        return Client(ws, principal.org, list(topics), asyncio.Queue(self.queue_size))

    async def _send(self, client: Client) -> None:
        while not client.ws.closed:
            frame = await client.queue.get()
            await client.ws.send_str(frame)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY, reason: bytes = b"gateway shutting down",
                        timeout: float = 5) -> None:
        """Close every open screen at once (shutdown, or after events may have been missed)."""
        closing = [client.ws.close(code=code, message=reason) for clients in self.clients.values() for client in clients]
        if closing:
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*closing, return_exceptions=True)
