"""One open screen (a socket past its hello) and the frames that go on it.

Guarantee: everything bound for a screen, the welcome first, goes through its one bounded queue, so it
leaves in the order it was put there; nothing ever waits for a slow screen: a frame that does not fit
closes the screen 1013 (its client resumes from its last position, losing nothing). A screen is closed
once, with a code of `shared.problems.CLOSES`.
"""

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from services.gateway.auth import Principal
from services.gateway.topics import Topics
from shared import metrics
from shared.problems import CLOSES

# The close codes, by what they tell the client (the table and its meanings: shared/problems.py).
BAD_MESSAGE = CLOSES["bad_message"].code
BAD_TOKEN = CLOSES["bad_token"].code
OTHER_PRINCIPAL = CLOSES["other_principal"].code
HELLO_TIMEOUT = CLOSES["hello_timeout"].code
TOO_SLOW = TOO_MANY_REPLAYS = CLOSES["try_again_later"].code
LOG_UNAVAILABLE = CLOSES["log_unavailable"].code
GOING_AWAY = CLOSES["going_away"].code


@dataclass(eq=False)
class Screen:
    ws: web.WebSocketResponse
    principal: Principal
    patterns: list[str]
    queue: asyncio.Queue[str]
    position: int = -1  # the last log position it has been brought past (sent, or not its business)
    live: bool = False
    busy: bool = False  # its replay holds a record it has not queued yet
    welcomed: bool = False  # nothing, not even a ping, goes before the welcome
    replay: asyncio.Task[None] | None = None
    closing: asyncio.Task[bool] | None = None
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

    def offer(self, frame: str) -> None:
        """Queue `frame` without waiting: a screen that has not read what it has is closed instead."""
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(TOO_SLOW, b"too slow: resume from your last position")

    def close(self, code: int, reason: bytes) -> None:
        if self.closing is None and not self.ws.closed:
            self.closing = asyncio.create_task(self.ws.close(code=code, message=reason))


def event_frame(position: int, epoch: str | None, topic: str, event: dict[str, Any]) -> str:
    return json.dumps(
        {
            "type": "event",
            "topic": topic,
            "id": event.get("id"),
            "position": position,
            "epoch": epoch,
            "data": event.get("data"),
            "occurred_at": event.get("occurred_at"),
            "command_id": event.get("command_id"),
        }
    )


def welcome_frame(screen: Screen, epoch: str | None, recovered: bool) -> str:
    screen.welcomed = True
    metrics.REPLAYS.labels(str(recovered).lower()).inc()
    return json.dumps(
        {
            "type": "welcome",
            "epoch": epoch,
            "recovered": recovered,
            "position": screen.position,
            "org": screen.org,
            "user": screen.principal.user,
            "topics": screen.patterns,
        }
    )
