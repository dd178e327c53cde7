"""What the realtime scale parts publish into the log: a few organisations' own events among many of
others, straight onto the `events` exchange as an outbox relay does (persistent, each confirmed), on one
channel so that the log keeps the order of the list (`bench.publisher`: aio-pika is too slow for 100,000)."""

import json
import time
from typing import Any
from uuid import uuid4

from bench.publisher import Publisher, message
from shared.topology import EVENTS
from tests.support.realtime import envelope

TYPE = "bench.scaled"  # one routing key for every organisation: a screen is told apart by its organisation only
TOPICS = ["bench.*"]
OTHER_ORGS = 100
Event = dict[str, Any]  # an envelope, as every service publishes one


def of(orgs: list[str], count: int) -> list[Event]:
    """`count` events spread round-robin over `orgs`, each with its number in `data.n`."""
    return [envelope(orgs[i % len(orgs)], TYPE, n=i) for i in range(count)]


def others(count: int) -> list[Event]:
    """`count` events of OTHER_ORGS fresh organisations, nobody's screen in the bench."""
    prefix = f"bench-other-{uuid4().hex[:8]}"
    return of([f"{prefix}-{k}" for k in range(OTHER_ORGS)], count)


def interleave(own: list[Event], rest: list[Event]) -> list[Event]:
    """`rest` spread evenly between the events of `own`, in order; the last event is own's last."""
    out: list[Event] = []
    for i, event in enumerate(own):
        out += rest[i * len(rest) // len(own) : (i + 1) * len(rest) // len(own)]
        out.append(event)
    return out


async def publish(amqp_url: str, events: list[Event]) -> float:
    """Publish `events` in order, each confirmed; how long it took (s), encoding included."""
    started = time.perf_counter()
    frames = [message(EVENTS, e["type"], json.dumps(e).encode(), e["id"], e["org_id"]) for e in events]
    publisher = await Publisher.connect(amqp_url)
    try:
        await publisher.publish(frames)
    finally:
        await publisher.close()
    return time.perf_counter() - started
