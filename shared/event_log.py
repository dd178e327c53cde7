"""The event log: one durable, ordered record of every service's events (a RabbitMQ stream).

    outbox relays ──► [events] topic ──#──► events.log (stream queue; a message's offset is its position)
                                              ├─► each gateway: a live reader from its own offset,
                                              │   one replay per resuming screen
                                              └─► any system: a stream consumer from an offset of its own

Guarantees:
- Every event published to `events` once the log exists is in it, in one order, with a position that never
  changes; the log outlives restarts of every process and of the broker; retention by age and size (settings).
- Every service and the gateway declare it (`ensure`) before they publish or read, so no event of a fresh
  deployment misses the log.
- The log has an **epoch**, recorded in PostgreSQL (schema `event_log`): a new one whenever the log is
  created, or found to have been deleted. A position is only ever read against the epoch it was given in.

A gateway also writes *markers* into the log (header `x-log-marker`, no `org_id`): they tell a reader
where the log ended when it started. Readers skip them; they are nobody's events.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import aio_pika
import aiormq
import asyncpg

from shared import logging
from shared.topology import EVENTS, declare_exchanges

LOG = "events.log"
MARKER_HEADER = "x-log-marker"
OFFSET_HEADER = "x-stream-offset"
log = logging.get("event_log")

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS event_log;
CREATE TABLE IF NOT EXISTS event_log.epoch (
    log text PRIMARY KEY,
    epoch text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Retention:
    max_age: str  # RabbitMQ's form: 7D, 12h, 30m, 1Y ...
    max_bytes: int
    segment_bytes: int  # retention drops whole segments: small ones make it fine-grained

    def arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "stream",
            "x-max-age": self.max_age,
            "x-max-length-bytes": self.max_bytes,
            "x-stream-max-segment-size-bytes": self.segment_bytes,
        }


def new_epoch() -> str:
    return uuid4().hex[:16]


async def read_epoch(conn: asyncpg.Connection) -> str | None:
    return await conn.fetchval("SELECT epoch FROM event_log.epoch WHERE log = $1", LOG)


async def _record_epoch(conn: asyncpg.Connection, epoch: str | None) -> str:
    """Record `epoch` (a new log) or, with None, keep the recorded one (making one if there is none)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('event_log.epoch'))")
        await conn.execute(_SCHEMA)
        if epoch is None:
            epoch = await read_epoch(conn) or new_epoch()
        await conn.execute(
            "INSERT INTO event_log.epoch (log, epoch) VALUES ($1, $2) "
            "ON CONFLICT (log) DO UPDATE SET epoch = excluded.epoch, created_at = now()",
            LOG,
            epoch,
        )
        return epoch


async def _exists(connection: aio_pika.abc.AbstractConnection) -> bool:
    channel = await connection.channel()  # a failed passive declare closes its channel
    try:
        await channel.declare_queue(LOG, passive=True)
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()


async def ensure(
    connection: aio_pika.abc.AbstractConnection,
    conn: asyncpg.Connection,
    retention: Retention,
    *,
    deleted: bool = False,
) -> str:
    """Make sure the log exists and is bound to `events`; return its epoch.

    The epoch is written before the log is declared, so whoever finds the log finds its epoch too.
    `deleted`: the caller saw the log vanish (its consumer was cancelled): whatever stands there now
    is another log, so it gets a new epoch even if someone already declared it again. An existing log
    keeps the arguments it was created with (change retention with a policy, or recreate it).
    """
    exists = await _exists(connection)
    epoch = await _record_epoch(conn, new_epoch() if deleted or not exists else None)
    channel = await connection.channel()
    try:
        await declare_exchanges(channel)
        queue = (
            await channel.declare_queue(LOG, durable=True, arguments=retention.arguments())
            if not exists
            else await channel.get_queue(LOG, ensure=False)
        )  # found a moment ago: no second declare
        await queue.bind(EVENTS, "#")
    finally:
        await channel.close()
    if deleted or not exists:
        log.info("event_log.created", epoch=epoch, **retention.arguments())
    return epoch


def offset_of(message: aio_pika.abc.AbstractIncomingMessage) -> int:
    return position_in(message.headers or {})


def position_in(headers: Mapping[str, Any]) -> int:
    """A delivered record's position, from its headers (aio-pika's message or aiormq's properties)."""
    # RabbitMQ sets this header on every message it delivers from a stream, and always to an integer.
    return int(headers[OFFSET_HEADER])


def is_marker(message: aio_pika.abc.AbstractIncomingMessage) -> bool:
    return MARKER_HEADER in (message.headers or {})


def marker(name: str) -> aio_pika.Message:
    """A record that says where the log stood; published straight to the log (default exchange)."""
    return aio_pika.Message(
        b"{}", headers={MARKER_HEADER: name}, message_id=name, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
    )
