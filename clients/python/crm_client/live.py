"""`subscribe`: the organisation's events over the websocket, resumed across reconnections.

Protocol (docs/realtime.md): hello {token, topics, resume: {epoch, position}} ──► welcome {epoch,
recovered, position} ──► the replay after `position`, then live events, each with (epoch, position).

Guarantees to the caller:
- Events come in position order, each once: a replayed event at or before the last position
  applied is skipped (the seam), and an event id seen already is skipped (a relay may publish
  one event twice).
- After any drop (close 1001 / 1013, a dead network, no frame for 2 x the ping interval) it
  reconnects by itself and resumes from the last position it yielded.
- When the server cannot resume (position older than the retention, another epoch, or a
  server that gives no positions) it yields `Reload` first: the caller reloads by REST, and
  the events that follow are live from there.
- A refusal of the socket (4400 malformed, 4401 bad or expired token, 4403 another principal)
  ends the iteration with a Refused error: reconnecting would be refused again.
"""

import asyncio
import json
import random
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from crm_client.errors import Invalid, Unauthorized, Unreachable
from crm_client.http import RetryPolicy

REFUSED = {4400: (Invalid, 400), 4401: (Unauthorized, 401), 4403: (Unauthorized, 403)}
REMEMBER_IDS = 10_000


@dataclass(frozen=True)
class Resume:
    """The last position applied, within its log's epoch."""

    epoch: str
    position: int

    @classmethod
    def parse(cls, text: str) -> "Resume":
        """`EPOCH:POSITION` (the epoch may itself hold colons: the position is after the last one)."""
        epoch, sep, position = text.rpartition(":")
        if not sep or not epoch:
            raise ValueError(f"expected EPOCH:POSITION, got {text!r}")
        return cls(epoch, int(position))

    @classmethod
    def coerce(cls, value: "Resume | dict[str, Any] | str | None") -> "Resume | None":
        if value is None or isinstance(value, Resume):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        return cls(str(value["epoch"]), int(value["position"]))

    def __str__(self) -> str:
        return f"{self.epoch}:{self.position}"


@dataclass(frozen=True)
class Event:
    topic: str
    id: str
    position: int | None
    epoch: str | None
    data: dict[str, Any]
    occurred_at: str | None = None
    command_id: str | None = None
    type: str = "event"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reload:
    """The events of a gap could not be replayed: reload by REST; live events follow from `position`."""

    epoch: str | None
    position: int | None
    reason: str
    recovered: bool = False
    type: str = "reload"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ws_url(url: str) -> str:
    return url.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"


def hello(token: str, topics: list[str], resume: Resume | None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "hello", "token": token, "topics": list(topics)}
    if resume is not None:
        message["resume"] = {"epoch": resume.epoch, "position": resume.position}
    return message


class _Stream:
    """What one subscription remembers across its connections."""

    def __init__(self, resume: Resume | None):
        self.last, self.connected_before = resume, False
        self.seen: OrderedDict[str, None] = OrderedDict()

    def welcome(self, message: dict[str, Any]) -> Reload | None:
        epoch, position, recovered = message.get("epoch"), message.get("position"), bool(message.get("recovered"))
        asked = self.last is not None or self.connected_before
        self.connected_before = True
        if recovered:
            return None
        if epoch is not None and position is not None:
            self.last = Resume(epoch, int(position))  # nothing after the head is missed from here on
        if not asked:
            return None
        return Reload(epoch, position, "the server could not replay the gap: reload")

    def accept(self, message: dict[str, Any]) -> Event | None:
        event = Event(
            message.get("topic", ""),
            str(message.get("id")),
            message.get("position"),
            message.get("epoch"),
            message.get("data") or {},
            message.get("occurred_at"),
            message.get("command_id"),
        )
        if event.id in self.seen:
            return None
        last = self.last
        if (
            event.position is not None
            and last is not None
            and event.epoch == last.epoch
            and event.position <= last.position
        ):
            return None  # replayed at the seam: applied already
        self.seen[event.id] = None
        if len(self.seen) > REMEMBER_IDS:
            self.seen.popitem(last=False)
        if event.position is not None and event.epoch is not None:
            self.last = Resume(event.epoch, event.position)
        return event


async def subscribe(
    url: str,
    token: str,
    topics: list[str],
    resume: Resume | None,
    ping_interval: float,
    policy: RetryPolicy,
    give_up_after: float = 120.0,
) -> AsyncGenerator[Event | Reload]:
    stream = _Stream(resume)
    failing_since: float | None = None
    failures = 0
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async for item in _connection(session, url, token, topics, stream, ping_interval):
                    failing_since, failures = None, 0  # a welcome came: the gateway is back
                    if item is not None:
                        yield item
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > give_up_after:
                raise Unreachable(f"no websocket to {url} for {give_up_after:.0f} s")
            failures += 1
            await asyncio.sleep(random.uniform(0, min(policy.backoff_max, policy.backoff * 2**failures)))


async def _connection(
    session: aiohttp.ClientSession, url: str, token: str, topics: list[str], stream: _Stream, ping_interval: float
) -> AsyncIterator[Event | Reload | None]:
    """One websocket: yields None once welcomed, then what the caller gets; returns when it drops."""
    async with session.ws_connect(ws_url(url), heartbeat=ping_interval) as ws:
        await ws.send_json(hello(token, topics, stream.last))
        welcome = await _next_json(ws, ping_interval * 2 + 5)
        if welcome is None or welcome.get("type") != "welcome":
            return
        yield None
        reload = stream.welcome(welcome)
        if reload is not None:
            yield reload
        # A server that speaks the resumable protocol pings in band: silence means it is dead.
        silence = ping_interval * 2 + 5 if "epoch" in welcome else None
        while True:
            message = await _next_json(ws, silence)
            if message is None:
                return
            if message.get("type") == "event":
                event = stream.accept(message)
                if event is not None:
                    yield event


async def _next_json(ws: aiohttp.ClientWebSocketResponse, timeout: float | None) -> dict[str, Any] | None:
    """The next JSON frame; None when the socket closed (or went silent) and should be resumed."""
    while True:
        try:
            frame = await ws.receive(timeout=timeout)
        except TimeoutError:
            await ws.close()
            return None
        if frame.type == aiohttp.WSMsgType.TEXT:
            try:
                return json.loads(frame.data)
            except ValueError:
                continue
        if frame.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        ):
            code = ws.close_code or (frame.data if frame.type == aiohttp.WSMsgType.CLOSE else None)
            if code in REFUSED:
                error, status = REFUSED[code]
                raise error(
                    status,
                    {
                        "status": status,
                        "title": "websocket refused",
                        "detail": str(frame.extra or f"closed with {code}"),
                    },
                )
            return None
