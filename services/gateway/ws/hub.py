"""The hub: the open screens of each organisation, and the live side of the event log fanned out to them.

Guarantee: a record the live reader got (in log order) reaches every live screen of its organisation
whose patterns match it, once (a second copy of an event, at another position, is skipped), in position
order, never a screen of another organisation; no screen is ever waited for (`Screen.offer`: one that
cannot take it is closed 1013). An idle screen hears an application ping every interval; all are closed
at once on shutdown or when the log is recreated.
"""

import asyncio
import json
from contextlib import suppress
from dataclasses import dataclass, field

from aiohttp import web

from services.gateway.auth import TokenRules
from services.gateway.stream import Reader, Record
from services.gateway.ws import protocol
from services.gateway.ws.replay import Archive, Replays, Seen
from services.gateway.ws.screen import GOING_AWAY, Screen, event_frame


@dataclass
class Hub:
    secret: TokenRules | str  # what a token must be (GatewaySettings.token_rules)
    queue_size: int
    hello_timeout: float
    allowed_origins: set[str]
    ping_interval: float = 15.0
    max_replays: int = 64  # (both caps are read once, into `replays`)
    max_replays_per_user: int = 4
    reader: Reader | None = None
    archive: Archive | None = None  # where resumes read their organisation's records (ws/replay.py)
    screens: dict[str, set[Screen]] = field(default_factory=dict)
    seen: Seen = field(default_factory=Seen)  # event ids read live: a copy at another position is skipped
    replays: Replays = field(init=False)

    def __post_init__(self) -> None:
        self.replays = Replays(self.seen, self.max_replays, self.max_replays_per_user, self.archive)

    @property
    def epoch(self) -> str | None:
        return self.reader.epoch if self.reader else None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """GET /ws: one socket, from its hello to its close (protocol.py)."""
        return await protocol.serve(self, request)

    def join(self, screen: Screen) -> None:
        self.screens.setdefault(screen.org, set()).add(screen)

    def leave(self, screen: Screen) -> None:
        self.screens.get(screen.org, set()).discard(screen)
        self.replays.running.discard(screen)  # (a replay still running frees its slot)

    def live(self, record: Record) -> None:
        """A record the live reader got (called in log order)."""
        position, topic, event = record
        self.replays.overtaken(position)  # replays already this far go live from here
        if event is None or self.seen.again(event, position):
            return
        org = event.get("org_id")
        screens = self.screens.get(org, ()) if isinstance(org, str) else ()  # (no organisation: nobody's)
        frame = None
        for screen in screens:
            if not screen.live or position <= screen.position:
                continue
            screen.position = position
            if not screen.wants(topic, event):
                continue
            frame = frame or event_frame(position, self.epoch, topic, event)
            screen.offer(frame)

    async def ping(self) -> None:
        """An application ping to every screen each interval: browsers cannot see protocol pings,
        so a page that hears nothing for two intervals knows the server is gone."""
        frame = json.dumps({"type": "ping"})
        while True:
            await asyncio.sleep(self.ping_interval)
            for screens in self.screens.values():
                for screen in screens:
                    if screen.welcomed and screen.queue.empty():  # a busy screen is hearing from us anyway
                        screen.offer(frame)

    async def close_all(
        self, code: int = GOING_AWAY, reason: bytes = b"gateway shutting down", timeout: float = 5
    ) -> None:
        """Close every open screen at once (shutdown, or a new log)."""
        closing = [
            screen.ws.close(code=code, message=reason) for screens in self.screens.values() for screen in screens
        ]
        if closing:
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*closing, return_exceptions=True)
