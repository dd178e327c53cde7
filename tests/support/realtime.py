"""A resumable screen for tests: connects, resumes from its last position, records what it got;
and a publisher of events straight onto the `events` exchange (as any system may)."""

import asyncio
import itertools
import json
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import aio_pika
import aiohttp

from services.gateway.auth import issue
from tests.support.stack import TEST_SECRET


@dataclass
class ResumingScreen:
    http: aiohttp.ClientSession
    url: str  # the gateway's http URL
    org: str
    topics: list[str] = field(default_factory=lambda: ["#"])
    token: str | None = None
    events: list[dict] = field(default_factory=list)
    welcomes: list[dict] = field(default_factory=list)
    epoch: str | None = None
    position: int | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None
    close_code: int | None = None
    _pump: asyncio.Task | None = None

    async def connect(self, resume: bool = True, **ws_options: Any) -> dict:
        """Open (again), resuming from the last position applied; returns the welcome."""
        hello: dict = {
            "type": "hello",
            "token": self.token or issue(TEST_SECRET, self.org, "viewer"),
            "topics": self.topics,
        }
        if resume and self.epoch is not None and self.position is not None:
            hello["resume"] = {"epoch": self.epoch, "position": self.position}
        self.ws = await self.http.ws_connect(self.url.replace("http", "ws") + "/ws", **ws_options)
        await self.ws.send_json(hello)
        welcome = await self.ws.receive_json(timeout=20)
        assert welcome["type"] == "welcome", welcome
        self.welcomes.append(welcome)
        self.epoch, self.position = welcome["epoch"], welcome["position"]
        self.close_code = None
        self._pump = asyncio.create_task(self._read(self.ws))
        return welcome

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame["type"] == "event":
                self.events.append(frame)
                self.epoch, self.position = frame["epoch"], frame["position"]
        self.close_code = ws.close_code

    async def drop(self) -> None:
        """The client side vanishes: what was not read yet is not applied."""
        if self._pump is not None:
            self._pump.cancel()
            with suppress(asyncio.CancelledError):
                await self._pump
        if self.ws is not None:
            await self.ws.close()

    @property
    def closed(self) -> bool:
        return self._pump is not None and self._pump.done()

    def of(self, topic: str | None = None) -> list[dict]:
        return [e for e in self.events if topic is None or e["topic"] == topic]


def envelope(org: str, type_: str = "tests.tick", **data: object) -> dict:
    return {
        "id": str(uuid4()),
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat(),
        "org_id": org,
        "command_id": None,
        "correlation_id": None,
        "data": data,
    }


async def publish_events(channel: aio_pika.abc.AbstractChannel, events: list[dict], batch: int = 200) -> None:
    """Onto `events` as an outbox relay would (persistent, confirmed); `batch` confirms awaited at once."""
    exchange = await channel.get_exchange("events")
    for start in range(0, len(events), batch):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        json.dumps(event).encode(),
                        message_id=event["id"],
                        headers={"x-org-id": event["org_id"]},
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    event["type"],
                )
                for event in events[start : start + batch]
            )
        )


def assert_once_in_order(received: list[dict], expected_ids: list[str]) -> None:
    """Every expected event once, and everything in strictly increasing positions (the log's order)."""
    wanted = set(expected_ids)
    ids = [e["id"] for e in received if e["id"] in wanted]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicates"
    missing = wanted - set(ids)
    assert not missing, f"{len(missing)} of {len(expected_ids)} events missing"
    positions = [e["position"] for e in received]
    assert all(a < b for a, b in itertools.pairwise(positions)), "positions out of order"
