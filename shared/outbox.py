"""The outbox: every committed change is announced, and only committed ones.

Guarantee: events are inserted in the same transaction as the change they
announce (`add`). The relay publishes rows with publisher confirms and deletes
them only after the broker confirmed, so a crash at any point loses no event
(at worst one is published twice; consumers dedupe on the event id), and a
rolled-back change leaves no row to publish.

    handler tx ──INSERT outbox──► COMMIT ──NOTIFY <schema>_outbox──► relay
    relay: SELECT … FOR UPDATE SKIP LOCKED ─► publish, await confirm ─► DELETE

Several relays (one per instance) share the table safely: SKIP LOCKED gives
each its own rows. A row that fails to publish is pushed back with a growing
delay, so it never blocks the rows behind it. The relay also wakes every
`poll_seconds` in case a NOTIFY was missed (e.g. while reconnecting).
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any

import asyncpg

from shared import logging, tracing
from shared.contracts.envelope import Event

Publish = Callable[[str, bytes, dict[str, Any], str, str | None], Awaitable[None]]
log = logging.get("outbox")


def insert(first: int) -> str:
    """The statement that writes events as outbox rows, its four arrays as parameters $first.. (see `rows`);
    usable on its own or inside another statement (inbox.record writes them with the inbox row)."""
    return (
        f"INSERT INTO outbox (event_id, routing_key, payload, headers) "
        f"SELECT * FROM unnest(${first}::uuid[], ${first + 1}::text[], ${first + 2}::jsonb[], ${first + 3}::jsonb[])"
    )


def rows(events: Sequence[Event], trace: dict[str, str] | None = None) -> tuple[list[Any], ...]:
    """`trace`: the trace context of the command that made them (shared/tracing.py), published with them."""
    return (
        [e.id for e in events],
        [e.type for e in events],
        [e.model_dump(mode="json") for e in events],
        [trace or {} for _ in events],
    )


async def add(conn: asyncpg.Connection, events: Sequence[Event], trace: dict[str, str] | None = None) -> None:
    if events:
        await conn.execute(insert(1), *rows(events, trace))


class Relay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        schema: str,
        publish: Publish,
        *,
        batch: int = 200,
        poll_seconds: float = 1.0,
    ):
        self._pool, self._dsn, self._channel, self._publish = pool, dsn, f"{schema}_outbox", publish
        self._batch, self._poll = batch, poll_seconds
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def cycle(self) -> None:
        """One round (a loop's cycle, shared/loops.py): publish what is due, batch after batch, then wait for a
        commit's NOTIFY or the poll. A database away is said here and tried again next round."""
        if self._listener is None or self._listener.is_closed():
            self._listener = await self._listen()
        # Cleared before reading, so a commit notified while we publish wakes the next round.
        self._wake.clear()
        try:
            while await self.publish_due() == self._batch:
                pass  # a full batch: there may be more right behind it
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("outbox.relay_failed", error=repr(exc))
        with suppress(TimeoutError):
            async with asyncio.timeout(self._poll):  # (not wait_for: in 3.11 it may swallow a cancellation)
                await self._wake.wait()

    async def close(self) -> None:
        if self._listener is not None:
            with suppress(Exception):
                await self._listener.close()

    async def publish_due(self) -> int:
        """Publish one batch of due rows; returns how many rows were taken."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, event_id, routing_key, payload, headers FROM outbox WHERE next_attempt_at <= now() "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch,
            )
            if not rows:
                return 0
            results = await asyncio.gather(*(self._send(row) for row in rows), return_exceptions=True)
            done = [row["id"] for row, result in zip(rows, results, strict=True) if result is None]
            failed = [
                (row["id"], repr(result)) for row, result in zip(rows, results, strict=True) if result is not None
            ]
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", done)
            if failed:
                log.warning("outbox.publish_failed", count=len(failed), error=failed[0][1])
                await conn.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, "
                    "next_attempt_at = now() + least(interval '1 second' * power(2, attempts), interval '10 seconds') "
                    "WHERE id = $1",
                    failed,
                )
            return len(rows)

    async def _send(self, row: asyncpg.Record) -> None:
        payload = row["payload"]
        headers = {"x-org-id": payload["org_id"], "x-event-type": payload["type"]}
        body = json.dumps(payload).encode()
        with tracing.attached(row["headers"]):  # published in the trace of the command that made it
            await self._publish(row["routing_key"], body, headers, str(row["event_id"]), payload.get("correlation_id"))

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(self._dsn, timeout=5)
            await conn.add_listener(self._channel, lambda *_: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox.listen_failed", error=repr(exc))
            return None  # polling still publishes; next failure retries LISTEN
