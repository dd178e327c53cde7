"""The event log's archive: every record of the log kept in PostgreSQL by (organisation, position), so that a
screen's resume reads its own organisation's events and nobody else's.

    events.log ──archiver (one per deployment: the gateway holding an advisory lock)──► event_log.records
                 (its own consumer, from the archive's head on)                        (org_id, position, frame)
                                                                                       event_log.archive
                                                                                       (epoch, tail, head)
    resume P ──► records of the org in (P, head], page by page ──► the log from head on (what the archiver has not
                                                                   written yet: normally nothing) ──► live

Guarantees:
- The archive holds, for its epoch, every record of the log in [tail, head] that belongs to an organisation,
  each as the very frame a live screen would get; `head` moves in the transaction that writes the records up to
  it, so what a resume reads below `head` is complete. Markers, unreadable bodies and events of no organisation
  are passed over (nobody's), but counted in the range; so are records PostgreSQL would refuse (NUL characters, an
  organisation id over ORG_MAX): a hostile publisher never stalls the archiver.
- One archiver writes at a time (PostgreSQL advisory lock on its connection): when its gateway dies, the lock
  goes with the session and another gateway's archiver takes over from `head`.
- A new epoch (the log deleted and declared again) empties the archive before anything of the new log goes in;
  so does a log whose first record is past the archive's head (retention dropped records the archiver had not
  read, while no gateway archived): it starts again at the first record still there.
- Records the log no longer holds are deleted every PRUNE_SECONDS. The log's retention stays the only one: a
  resume checks the log itself for its own position (ws/replay.py).
- Reading it never fails a resume: any database trouble makes a replay read the log instead (what it cost
  before there was an archive).

Why PostgreSQL, not the broker: RabbitMQ's stream filtering (3.13+, a Bloom filter per chunk over the stream
protocol) is not in the RabbitMQ this product supports (3.10, the Debian package); and even with it a replay
still reads every chunk that holds one of its organisation's records. An index on (org_id, position) makes a
resume cost what its own events cost. The price: each record written once more (a COPY per batch of up to
BATCH records, well under the log's own write) and the log's size again in PostgreSQL (README, "Realtime").
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

import aio_pika
import aiormq
import asyncpg
from aiormq.abc import DeliveredMessage

from services.gateway.stream import open_channel
from services.gateway.ws.screen import event_frame
from shared import db, event_log, logging, metrics
from shared.loops import Loop

log = logging.get("gateway.archive")
LOCK = "event_log.archive"
BATCH = 1000  # records written per transaction at most (and the consumer's prefetch)
ORG_MAX = 255  # characters of an organisation id the archive keeps (a btree key holds ~2,700 bytes)
PAGE = 200  # records a replay reads per query (held in memory by each replay running: 64 at most per gateway)
LINGER = 0.02  # s a batch waits for more records once one came
IDLE_SECONDS = 1.0  # the longest wait for a record before the archiver looks around (beat, epoch, prune)
EPOCH_CHECK_SECONDS = 5.0
PRUNE_SECONDS = 60.0
STANDBY_SECONDS = 5.0  # how often a gateway that is not the archiver asks for the lock
READ_TIMEOUT = 5.0
DATABASE_ERRORS = db.ERRORS  # (also what a query raises before the archiver made the tables: UndefinedTable)

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS event_log;
CREATE TABLE IF NOT EXISTS event_log.archive (
    log text PRIMARY KEY,
    epoch text NOT NULL,
    tail bigint,            -- the first position archived (NULL: nothing yet)
    head bigint             -- the last position archived: every record in [tail, head] is in
);
CREATE TABLE IF NOT EXISTS event_log.records (
    org_id text NOT NULL,
    position bigint NOT NULL,
    topic text NOT NULL,
    event_id text NOT NULL,
    frame text NOT NULL,    -- the event frame as a live screen gets it (ws/screen.py event_frame)
    PRIMARY KEY (org_id, position)
);
CREATE INDEX IF NOT EXISTS records_position ON event_log.records (position);
"""
COLUMNS = ("org_id", "position", "topic", "event_id", "frame")
Row = tuple[str, int, str, str, str]


@dataclass(frozen=True)
class Span:
    tail: int
    head: int

    def covers(self, start: int) -> bool:
        """Whether everything after `start` up to the head is here (and there is something)."""
        return self.tail <= start + 1 and start < self.head


class NewLog(Exception):
    """The log the archiver reads is not the one it archived (deleted, another epoch): start again."""


def row(position: int, topic: str, body: bytes, epoch: str) -> Row | None:
    """The archive's row for a record, or None when it is nobody's (a marker, an unreadable body, no org)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    org = event.get("org_id") if isinstance(event, dict) else None
    if not isinstance(org, str):
        return None
    key = str(event.get("id"))
    # Anyone may publish to `events`: what PostgreSQL would refuse (a NUL in text, a key too long for the index)
    # must not fail the batch, for the archiver would then stop at that record for good.
    if len(org) > ORG_MAX or any("\x00" in text for text in (org, topic, key)):
        return None
    return org, position, topic, key, event_frame(position, epoch, topic, event)


class Archive:
    """The reading side: what a replay asks (a small pool of its own, opened on first use)."""

    def __init__(self, database_url: str, size: int = 4):
        self._database_url, self._size = database_url, size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._database_url, min_size=0, max_size=self._size, timeout=READ_TIMEOUT
                )
            return self._pool

    async def span(self, epoch: str | None) -> Span | None:
        """What the archive holds for `epoch`; None when nothing, or when it cannot be asked now."""
        if epoch is None:
            return None
        try:
            pool = await self._get_pool()
            found = await pool.fetchrow(
                "SELECT tail, head FROM event_log.archive WHERE log = $1 AND epoch = $2",
                event_log.LOG,
                epoch,
                timeout=READ_TIMEOUT,
            )
        except DATABASE_ERRORS as exc:
            log.warning("archive.unavailable", error=repr(exc)[:300])
            return None
        if found is None or found["tail"] is None or found["head"] is None:
            return None
        return Span(found["tail"], found["head"])

    async def records(self, org: str, after: int, upto: int) -> AsyncIterator[tuple[int, str, str, str]]:
        """(position, topic, event id, frame) of `org` in (after, upto], in order, PAGE at a time (keyset), each
        page a query of its own: no connection is held while the screen takes them."""
        pool = await self._get_pool()
        while after < upto:
            page = await pool.fetch(
                "SELECT position, topic, event_id, frame FROM event_log.records "
                "WHERE org_id = $1 AND position > $2 AND position <= $3 ORDER BY position LIMIT $4",
                org,
                after,
                upto,
                PAGE,
                timeout=READ_TIMEOUT,
            )
            metrics.REPLAY_RECORDS.labels("archive").inc(len(page))
            for found in page:
                yield found["position"], found["topic"], found["event_id"], found["frame"]
            if len(page) < PAGE:
                return
            after = page[-1]["position"]

    async def close(self) -> None:
        if self._pool is not None:
            with suppress(*DATABASE_ERRORS):
                await asyncio.wait_for(self._pool.close(), READ_TIMEOUT)


class Archiver:
    """The writing side: run by every gateway, archiving in the one that holds the lock."""

    def __init__(self, amqp_url: str, database_url: str, name: str, prune_every: float = PRUNE_SECONDS):
        self._amqp_url, self._database_url, self._name = amqp_url, database_url, name
        self._prune_every = prune_every
        self._gone_epoch: str | None = None  # the epoch whose log vanished under us: wait for the next one
        self.archiving = False  # holds the lock (the other gateways' archivers stand by)
        self.loop = Loop("event_log_archiver", self._session, every=STANDBY_SECONDS, deadline=60.0, backoff=(0.5, 10))

    async def start(self) -> None:
        """Archive for good, or stand by (shared/loops.py: a failed session is logged, counted, backed off)."""
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def _session(self) -> None:
        db = await asyncpg.connect(self._database_url, timeout=5)
        try:
            if not await db.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", LOCK):
                return  # another gateway archives; asked again in STANDBY_SECONDS
            self.archiving = True
            await db.execute(SCHEMA)
            epoch = await event_log.read_epoch(db)
            if epoch is None or epoch == self._gone_epoch:
                return  # no log yet, or the reader has not given the new one its epoch yet
            head = await self._open(db, epoch)
            connection = await aio_pika.connect(
                self._amqp_url, timeout=5, client_properties={"connection_name": f"{self._name}.archiver"}
            )
            async with connection:
                await self._archive(connection, db, epoch, head)
        except NewLog as exc:
            log.warning("archive.new_log", reason=str(exc))
        finally:
            self.archiving = False
            with suppress(*DATABASE_ERRORS):
                await db.close(timeout=5)  # (the lock goes with the session)

    async def _open(self, db: asyncpg.Connection, epoch: str) -> int | None:
        """The head archived for `epoch`, after emptying an archive of another epoch."""
        found = await db.fetchrow("SELECT epoch, head FROM event_log.archive WHERE log = $1", event_log.LOG)
        if found is not None and found["epoch"] == epoch:
            return cast(int | None, found["head"])
        await self._restart(db, epoch)
        return None

    async def _restart(self, db: asyncpg.Connection, epoch: str) -> None:
        """Empty the archive: it starts again at the first record the log holds."""
        async with db.transaction():
            await db.execute("TRUNCATE event_log.records")
            await db.execute(
                "INSERT INTO event_log.archive (log, epoch, tail, head) VALUES ($1, $2, NULL, NULL) "
                "ON CONFLICT (log) DO UPDATE SET epoch = excluded.epoch, tail = NULL, head = NULL",
                event_log.LOG,
                epoch,
            )
        log.info("archive.started", epoch=epoch)

    async def _archive(
        self, connection: aio_pika.abc.AbstractConnection, db: asyncpg.Connection, epoch: str, head: int | None
    ) -> None:
        if head is not None and (await first_position(connection) or 0) > head:
            await self._restart(db, epoch)  # the log dropped all we archived, and maybe more, unread
            head = None
        channel = await open_channel(connection)
        await channel.declare_queue(event_log.LOG, passive=True)
        # Straight on aiormq's channel: aio-pika's message object costs more than the rest of a record's archiving.
        underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
        await underlay.basic_qos(prefetch_count=BATCH)
        arrived: asyncio.Queue[DeliveredMessage] = asyncio.Queue()
        start: int | str = "first" if head is None else head + 1

        async def arrive(message: DeliveredMessage) -> None:
            arrived.put_nowait(message)  # (bounded by the prefetch)

        consuming = await underlay.basic_consume(event_log.LOG, arrive, arguments={"x-stream-offset": start})
        tag = consuming.consumer_tag
        log.info("archive.reading", epoch=epoch, start=start)
        loop = asyncio.get_running_loop()
        next_epoch_check = loop.time() + EPOCH_CHECK_SECONDS
        next_prune = loop.time()
        while True:
            batch = await _take(arrived)
            self.loop.beat()
            if batch:
                head = await self._write(db, epoch, head, batch)
                await underlay.basic_ack(batch[-1].delivery_tag or 0, multiple=True)  # on a stream: credit
            if tag not in underlay.consumers:
                self._gone_epoch = epoch
                raise NewLog("the log was deleted")
            if loop.time() >= next_epoch_check:
                next_epoch_check = loop.time() + EPOCH_CHECK_SECONDS
                if await event_log.read_epoch(db) != epoch:
                    raise NewLog("another epoch")
            if loop.time() >= next_prune:
                next_prune = loop.time() + self._prune_every
                await self._prune(connection, db)

    async def _write(
        self, db: asyncpg.Connection, epoch: str, head: int | None, batch: list[DeliveredMessage]
    ) -> int | None:
        """Archive the batch (what is past `head`) and move the head, in one transaction; return the new head."""
        rows: list[Row] = []
        first: int | None = None  # the first position of this batch past `head`
        for message in batch:
            headers = message.header.properties.headers or {}
            position = event_log.position_in(headers)
            if head is not None and position <= head:
                continue  # a read begins with its chunk: what was archived may come again
            first = position if first is None else first
            head = position
            if event_log.MARKER_HEADER not in headers:
                found = row(position, message.routing_key or "", message.body, epoch)
                if found is not None:
                    rows.append(found)
        if first is None or head is None:  # (a first past `head` made a head)
            return head
        async with db.transaction():
            if rows:
                await db.copy_records_to_table("records", schema_name="event_log", records=rows, columns=COLUMNS)
            await db.execute(
                "UPDATE event_log.archive SET head = $2, tail = COALESCE(tail, $3) WHERE log = $1",
                event_log.LOG,
                head,
                first,
            )
        metrics.ARCHIVE_POSITION.set(head)
        return head

    async def _prune(self, connection: aio_pika.abc.AbstractConnection, db: asyncpg.Connection) -> None:
        """Delete what the log no longer holds (its first record's position, asked of the log)."""
        first = await first_position(connection)
        if first is None:
            return
        async with db.transaction():
            deleted = await db.execute("DELETE FROM event_log.records WHERE position < $1", first)
            await db.execute(
                "UPDATE event_log.archive SET tail = GREATEST(tail, $2) WHERE log = $1", event_log.LOG, first
            )
        if deleted != "DELETE 0":
            log.info("archive.pruned", first=first, deleted=deleted)


async def first_position(connection: aio_pika.abc.AbstractConnection, timeout: float = 5.0) -> int | None:
    """The position of the first record the log holds (None: empty, or no answer in `timeout`)."""
    channel = await open_channel(connection)  # (a connection gone: ConnectionError, the broker away, not a bug)
    try:
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(event_log.LOG, passive=True)
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in queue.iterator(arguments={"x-stream-offset": "first"}):
                    return event_log.offset_of(message)
        return None
    finally:
        if not channel.is_closed:
            await channel.close()


async def _take(arrived: asyncio.Queue[Any]) -> list[Any]:
    """What has arrived, up to BATCH: waits up to IDLE_SECONDS for the first, then LINGER for more (one
    transaction for many records; nobody waits on the archive: a resume reads the log past its head)."""
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the item instead of raising when it is
        # cancelled just as the item comes, and a stopped archiver would then go on.
        async with asyncio.timeout(IDLE_SECONDS):
            first = await arrived.get()
    except TimeoutError:
        return []
    if arrived.qsize() < BATCH - 1:
        await asyncio.sleep(LINGER)
    batch = [first]
    while len(batch) < BATCH and not arrived.empty():
        batch.append(arrived.get_nowait())
    return batch
