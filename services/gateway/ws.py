"""Websockets: the event log fanned out to the open screens of one organisation, resumable without loss.

Protocol (docs/realtime.md): the client's first message is
    {"type": "hello", "token": "<JWT>", "topics": ["leads.*"], "resume": {"epoch": E, "position": P}}
The server answers {"type": "welcome", "epoch", "recovered", "position", ...}; with `recovered: true`
every matching event of the organisation after P follows in position order (the replay), then live
events, with no gap and no duplicate at the seam. Events: {"type": "event", "topic", "id", "position",
"epoch", "data", "occurred_at", "command_id"}; never another organisation's.

The seam: a screen has a `position`, the last log position it has been brought past (sent, or not its
business). A resuming screen reads the log from P on its own; live records are ignored for it until its
replay reaches the live head, and afterwards only records past its position are sent. A record is put
on the screen's queue before its position moves, so the live side never overtakes the replay.

What a client may send, and its limits, is shared/contracts/realtime.py; patterns are matched by
services/gateway/topics.py. A replay holds a channel and reads the log of every organisation from its
position: a resume that would replay (or wait for a lagging head) takes one of `max_replays` slots, at
most `max_replays_per_user` of them per (organisation, user), until it is live; beyond either, 1013.

Close codes: 4400 malformed message (the reason says what), 4401 token missing, invalid or expired,
4403 a refresh for another principal, 4408 no hello in time, 1013 the client read too slowly (its queue
filled: resume) or too many replays (resume after a backoff), 1011 the event log is unavailable
(retry), 1001 the gateway is stopping (resume).
"""
import asyncio
import json
import time
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from services.gateway.auth import BadToken, Principal, TokenRules, decode
from services.gateway.errors import Problem
from services.gateway.stream import CONNECTION_ERRORS, Reader, Record
from services.gateway.topics import Topics, topic_matches
from shared import logging, metrics
from shared.contracts import realtime

log = logging.get("gateway.ws")
BAD_MESSAGE, BAD_TOKEN, OTHER_PRINCIPAL, HELLO_TIMEOUT = 4400, 4401, 4403, 4408
TOO_SLOW = TOO_MANY_REPLAYS = WSCloseCode.TRY_AGAIN_LATER
LOG_UNAVAILABLE = WSCloseCode.INTERNAL_ERROR
MAX_MESSAGE_BYTES = 1024**2  # a hello of 32 long topics is some 10 KB; aiohttp's own limit is 4 MB
REMEMBER_IDS = 50_000  # event ids the hub remembers to send each once (the relay publishes at least once)
REPLAY_REMEMBER_IDS = 10_000
LAGGING_HEAD_WAIT = 2.0  # a position past our head may be one another gateway has read already
__all__ = ["Hub", "Screen", "topic_matches"]  # (topic_matches: still importable from here)


def remember(memory: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    """Keep the last `limit` keys (ids of events seen) and forget the oldest."""
    memory[key] = value
    if len(memory) > limit:
        memory.popitem(last=False)


@dataclass(eq=False)
class Screen:
    ws: web.WebSocketResponse
    principal: Principal
    patterns: list[str]
    queue: asyncio.Queue[str]
    position: int = -1
    live: bool = False
    busy: bool = False  # its replay holds a record it has not queued yet
    welcomed: bool = False  # nothing, not even a ping, goes before the welcome
    replay: asyncio.Task[None] | None = None
    closing: asyncio.Task[None] | None = None
    expiry: asyncio.TimerHandle | None = None  # closes the socket when its token expires
    topics: Topics = field(init=False)

    def __post_init__(self) -> None:
        self.topics = Topics(self.patterns)  # compiled once, at the hello: matched for every event

    @property
    def org(self) -> str:
        return self.principal.org

    @property
    def user(self) -> tuple[str, str]:
        return self.principal.org, self.principal.user

    def wants(self, topic: str, event: dict[str, Any]) -> bool:
        return event.get("org_id") == self.org and self.topics.match(topic)

    def close(self, code: int, reason: bytes) -> None:
        if self.closing is None and not self.ws.closed:
            self.closing = asyncio.create_task(self.ws.close(code=code, message=reason))


def event_frame(position: int, epoch: str | None, topic: str, event: dict[str, Any]) -> str:
    return json.dumps({"type": "event", "topic": topic, "id": event.get("id"), "position": position, "epoch": epoch,
                       "data": event.get("data"), "occurred_at": event.get("occurred_at"),
                       "command_id": event.get("command_id")})


@dataclass
class Hub:
    secret: TokenRules | str  # what a token must be (GatewaySettings.token_rules)
    queue_size: int
    hello_timeout: float
    allowed_origins: set[str]
    ping_interval: float = 15.0
    max_replays: int = 64
    max_replays_per_user: int = 4
    reader: Reader | None = None
    screens: dict[str, set[Screen]] = field(default_factory=dict)
    replaying: set[Screen] = field(default_factory=set)  # each holds a replay slot until it is live
    # event id -> the position it was first read at: a second copy (another position) is skipped
    seen: OrderedDict[str, int] = field(default_factory=OrderedDict)

    @property
    def epoch(self) -> str | None:
        return self.reader.epoch if self.reader else None

    @property
    def head(self) -> int | None:
        return self.reader.head if self.reader else None

    def duplicate(self, event: dict[str, Any], position: int) -> bool:
        key = str(event.get("id"))
        first = self.seen.get(key)
        if first is None:
            remember(self.seen, key, position, REMEMBER_IDS)
            return False
        return first != position

    # Live ---------------------------------------------------------------------------------
    def live(self, record: Record) -> None:
        """A record the live reader got (called in log order)."""
        position, topic, event = record
        for screen in list(self.replaying):
            if not screen.busy and screen.position >= position:
                self._go_live(screen)  # its replay is ahead of us: the live side takes over from here
        if event is None or self.duplicate(event, position):
            return
        frame = None
        for screen in self.screens.get(event.get("org_id"), ()):  # type: ignore[arg-type]
            if not screen.live or position <= screen.position:
                continue
            screen.position = position
            if not screen.wants(topic, event):
                continue
            frame = frame or event_frame(position, self.epoch, topic, event)
            self._offer(screen, frame)

    def _offer(self, screen: Screen, frame: str) -> None:
        try:
            screen.queue.put_nowait(frame)
        except asyncio.QueueFull:
            screen.close(TOO_SLOW, b"too slow: resume from your last position")

    def _go_live(self, screen: Screen) -> None:
        screen.live = True
        self.replaying.discard(screen)
        if screen.replay is not None and screen.replay is not asyncio.current_task():
            screen.replay.cancel()

    # Replay -------------------------------------------------------------------------------
    async def _replay(self, screen: Screen, start: int) -> None:
        """Send what came after `start`, then hand the screen to the live side. The first record
        read must be `start` itself (or the one right after): otherwise the log no longer holds it."""
        assert self.reader is not None
        recent: OrderedDict[str, None] = OrderedDict()
        first = True
        try:
            async for position, topic, event in self.reader.replay(start):
                screen.busy = True
                if first:
                    first = False
                    if position > start + 1:  # what came after `start` is gone (retention)
                        self._from_head(screen)
                        return
                    await screen.queue.put(self._welcome(screen, recovered=True))
                if position > screen.position:
                    if event is not None and screen.wants(topic, event) and not self._seen_in_replay(
                            event, position, recent):
                        await screen.queue.put(event_frame(position, self.epoch, topic, event))
                    screen.position = position
                screen.busy = False
                if self.head is not None and screen.position >= self.head:
                    self._go_live(screen)
                    return
        except CONNECTION_ERRORS as exc:
            log.warning("ws.replay_failed", error=repr(exc))
            screen.close(LOG_UNAVAILABLE, b"the event log is unavailable: resume in a moment")
        finally:
            screen.busy = False
            self.replaying.discard(screen)

    def _seen_in_replay(self, event: dict[str, Any], position: int, recent: OrderedDict[str, None]) -> bool:
        key = str(event.get("id"))
        first = self.seen.get(key)
        if (first is not None and first < position) or key in recent:
            return True
        remember(recent, key, None, REPLAY_REMEMBER_IDS)
        return False

    def _welcome(self, screen: Screen, recovered: bool) -> str:
        screen.welcomed = True
        metrics.REPLAYS.labels(str(recovered).lower()).inc()
        return json.dumps({"type": "welcome", "epoch": self.epoch, "recovered": recovered, "position": screen.position,
                           "org": screen.org, "user": screen.principal.user, "topics": screen.patterns})

    def _from_head(self, screen: Screen) -> None:
        """Not recovered: the client reloads by REST and goes on live from the head."""
        screen.position = self.head if self.head is not None else -1
        self._offer(screen, self._welcome(screen, recovered=False))
        self._go_live(screen)

    async def _start(self, screen: Screen, resume: realtime.Resume | None) -> None:
        """Welcome the screen: from the live head, or resumed from its position.
        Every frame, the welcome first, goes through the screen's queue: one order."""
        if resume is None or resume.epoch != self.epoch:
            return self._from_head(screen)
        start = resume.position
        if start != self.head and not self._take_replay_slot(screen):  # to replay, or to wait for the head
            return
        deadline = time.monotonic() + LAGGING_HEAD_WAIT
        while self.head is not None and start > self.head and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # another gateway may have read further than we have
        head = self.head
        if head is None or start > head:
            return self._from_head(screen)
        screen.position = start
        if start == head:
            self._offer(screen, self._welcome(screen, recovered=True))
            return self._go_live(screen)
        screen.replay = asyncio.create_task(self._replay(screen, start))

    def _take_replay_slot(self, screen: Screen) -> bool:
        """A replay holds a channel and reads every organisation's log: so many at once per gateway and
        per user. Beyond either cap the screen is closed 1013, and its client resumes after a backoff."""
        if sum(other.user == screen.user for other in self.replaying) >= self.max_replays_per_user:
            refusal = "for this user"
        elif len(self.replaying) >= self.max_replays:
            refusal = "on this gateway"
        else:
            self.replaying.add(screen)  # (its position is -1 until it replays: the live side leaves it be)
            return True
        log.info("ws.replay_refused", org_id=screen.org, user_id=screen.principal.user, cap=refusal)
        reason = realtime.close_reason(f"too many replays {refusal}: resume after a backoff")
        screen.close(TOO_MANY_REPLAYS, reason)
        return False

    # Connections --------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if self.allowed_origins and origin not in self.allowed_origins:
            raise Problem(403, "Forbidden", f"origin {origin!r} may not open a websocket here", "/problems/origin")
        # Protocol pings every interval; no pong within half of it closes the socket (aiohttp's rule).
        ws = web.WebSocketResponse(heartbeat=self.ping_interval, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        hello = await self._hello(ws)
        if hello is None:
            return ws
        screen, resume = hello
        if not await self._log_ready():
            await ws.close(code=LOG_UNAVAILABLE, message=b"the event log is unavailable: try again")
            return ws
        self.screens.setdefault(screen.org, set()).add(screen)
        metrics.WEBSOCKETS.inc()
        sender = asyncio.create_task(self._send(screen))
        screen.expiry = self._expire_at(screen)
        try:
            await self._start(screen, resume)
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_message(screen, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            if screen.expiry is not None:
                screen.expiry.cancel()
            self.screens.get(screen.org, set()).discard(screen)
            metrics.WEBSOCKETS.dec()
            self.replaying.discard(screen)
            for task in (sender, screen.replay):
                if task is not None:
                    task.cancel()
                    # A client that vanished makes the sender fail: that is a goodbye, not an error.
                    with suppress(asyncio.CancelledError, *CONNECTION_ERRORS):
                        await task
        return ws

    async def _log_ready(self) -> bool:
        if self.reader is None:
            return False
        with suppress(TimeoutError):
            async with asyncio.timeout(self.hello_timeout):
                await self.reader.ready.wait()
        return self.reader.ready.is_set()

    async def _hello(self, ws: web.WebSocketResponse) -> tuple[Screen, realtime.Resume | None] | None:
        try:
            message = await ws.receive(timeout=self.hello_timeout)
        except TimeoutError:
            await ws.close(code=HELLO_TIMEOUT, message=b"no hello in time")
            return None
        try:
            hello = realtime.parse_hello(message.data if message.type == WSMsgType.TEXT else None)
        except realtime.BadMessage as exc:
            await ws.close(code=BAD_MESSAGE, message=realtime.close_reason(str(exc)))
            return None
        try:
            principal = decode(hello.token, self.secret)
        except BadToken as exc:  # (decode turns any unreadable token into BadToken)
            await ws.close(code=BAD_TOKEN, message=realtime.close_reason(str(exc)))
            return None
        return Screen(ws, principal, list(hello.topics), asyncio.Queue(self.queue_size)), hello.resume

    def _on_message(self, screen: Screen, data: str) -> None:
        try:
            message = realtime.parse_later(data)
        except realtime.BadMessage as exc:
            return screen.close(BAD_MESSAGE, realtime.close_reason(str(exc)))
        if isinstance(message, realtime.Refresh):
            self._refresh(screen, message.token)

    def _refresh(self, screen: Screen, token: str) -> None:
        """A new token for the same organisation and user replaces the socket's (and its expiry)."""
        try:
            principal = decode(token, self.secret)
        except BadToken as exc:
            return screen.close(BAD_TOKEN, realtime.close_reason(str(exc)))
        if (principal.org, principal.user) != screen.user:
            return screen.close(OTHER_PRINCIPAL, b"a refresh must be for the same organisation and user")
        screen.principal = principal
        if screen.expiry is not None:
            screen.expiry.cancel()
        screen.expiry = self._expire_at(screen)
        self._offer(screen, json.dumps({"type": "refreshed", "expires_at": principal.expires_at}))

    def _expire_at(self, screen: Screen) -> asyncio.TimerHandle:
        delay = max(0.0, screen.principal.expires_at - time.time())
        return asyncio.get_running_loop().call_later(delay, screen.close, BAD_TOKEN, b"token expired")

    async def _send(self, screen: Screen) -> None:
        while not screen.ws.closed:
            frame = await screen.queue.get()
            await screen.ws.send_str(frame)

    async def ping(self) -> None:
        """An application ping to every screen each interval: browsers cannot see protocol pings,
        so a page that hears nothing for two intervals knows the server is gone."""
        frame = json.dumps({"type": "ping"})
        while True:
            await asyncio.sleep(self.ping_interval)
            for screens in self.screens.values():
                for screen in screens:
                    if screen.welcomed and screen.queue.empty():  # a busy screen is hearing from us anyway
                        self._offer(screen, frame)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY, reason: bytes = b"gateway shutting down",
                        timeout: float = 5) -> None:
        """Close every open screen at once (shutdown, or a new log)."""
        closing = [screen.ws.close(code=code, message=reason) for screens in self.screens.values() for screen in screens]
        if closing:
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*closing, return_exceptions=True)
