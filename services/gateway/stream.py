"""The gateway's reading of the event log (shared/event_log.py): one live reader, one replay per resuming screen.

    events.log ──live reader (from where it stopped)──► Hub.live(position, topic, event) ──► live screens
               └─replay(from P)── one channel per resuming screen ──► that screen, until it reaches the live head

The live reader has a connection of its own (a stream consumer must not share a channel with
anything else, and its offset must not be the robust connection's: aio-pika would re-consume from the
original offset spec). After a broker outage it goes on from the position after the last one it read,
so no screen misses anything and none has to reload.

Where the log ended when the reader first started is learnt from a marker it publishes into the log:
everything up to the marker is older than this gateway (`head` is unknown until then, `ready` is unset).
A log found deleted (our consumer cancelled), or an epoch changed in the database, is another log:
`on_new_log` closes the screens so they resume and are told `recovered: false`.

A lost broker connection is told from a bug by what it raises (CONNECTION_ERRORS): a replay whose
connection goes raises one of them, and never just ends; anything else is a bug, left to propagate.
"""

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing, suppress
from typing import Any, cast
from uuid import uuid4

import aio_pika
import aiormq
import asyncpg

from shared import event_log, logging, metrics, tracing
from shared.loops import Loop

log = logging.get("gateway.stream")
Record = tuple[int, str, dict[str, Any] | None]  # position, topic, event (None: a marker or an unreadable body)
LIVE_PREFETCH = 500
REPLAY_PREFETCH = 200
ACK_EVERY = 50  # well below both prefetches: credit never runs out while acks are pending
WATCH_SECONDS = 1.0
EPOCH_CHECK_SECONDS = 5.0
READER_DEADLINE = 60.0  # a session reads for good, its watch beating every WATCH_SECONDS: this long without a beat
# What reading the log raises when the broker connection goes (or the broker refuses): OSError (a socket's
# errors, TimeoutError, aiormq's AMQPConnectionError), any AMQPError (ConnectionClosed, ChannelClosed, a frame
# it cannot read), and ChannelInvalidStateError, the one RuntimeError aiormq and aio-pika raise on purpose: an
# operation on a channel that closed under us. A bare RuntimeError is a bug, with one exception: the one
# aio-pika and aiormq raise for a channel asked of a connection that is gone (`_channel` turns it into a
# ConnectionError, by the connection's state, not by the error's words).
CONNECTION_ERRORS = (OSError, aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError)


class LogDeleted(Exception):
    pass


class NewEpoch(Exception):
    pass


def decode(message: aio_pika.abc.AbstractIncomingMessage) -> Record:
    position = event_log.offset_of(message)
    if event_log.is_marker(message):
        return position, "", None
    try:
        event = json.loads(message.body)
    except ValueError:
        log.warning("stream.unreadable_event", position=position, routing_key=message.routing_key)
        return position, "", None
    return position, message.routing_key or "", event if isinstance(event, dict) else None


class Reader:
    def __init__(
        self,
        amqp_url: str,
        database_url: str,
        retention: event_log.Retention,
        name: str,
        on_record: Callable[[Record], None],
        on_new_log: Callable[[], Awaitable[None]],
    ):
        self._amqp_url, self._database_url, self._retention, self._name = amqp_url, database_url, retention, name
        self._on_record, self._on_new_log = on_record, on_new_log
        self.epoch: str | None = None
        self.head: int | None = None  # the last position read live, once the start marker was seen
        self.ready = asyncio.Event()
        self._read_to: int | None = None  # the last position the live consumer got (also before the marker)
        self._marker: str | None = None
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._deleted = False
        self.loop = Loop("event_log_reader", self._session, every=0, deadline=READER_DEADLINE, backoff=(0.2, 5.0))

    async def start(self) -> None:
        """Read for good (shared/loops.py): a session that fails is logged, counted, backed off and opened again,
        whatever it raised; one that ends because the log is new is opened again at once."""
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed and self.ready.is_set()

    async def _session(self) -> None:
        try:
            await self._read()
        except (LogDeleted, NewEpoch) as exc:
            log.warning("stream.new_log", reason=type(exc).__name__)
            self._deleted = isinstance(exc, LogDeleted)
        finally:
            self._connection = None

    async def _read(self) -> None:
        connection = await aio_pika.connect(
            self._amqp_url, timeout=5, client_properties={"connection_name": f"{self._name}.log"}
        )
        async with connection:
            db = await asyncpg.connect(self._database_url, timeout=5)
            try:
                await self._open(connection, db)
                channel = await open_channel(connection)
                await channel.set_qos(prefetch_count=LIVE_PREFETCH)
                queue = await channel.declare_queue(event_log.LOG, passive=True)
                start: int | str = "last" if self._read_to is None else self._read_to + 1
                # No `async with`: leaving it would nack the buffered messages; closing the connection ends all.
                records = queue.iterator(arguments={"x-stream-offset": start})
                await records.consume()
                if self.head is None:
                    await self._publish_marker(connection)
                self._connection = connection
                log.info("stream.reading", epoch=self.epoch, start=start)
                await _first_of(self._consume(records), self._watch(channel, records, db))
            finally:
                await db.close()

    async def _open(self, connection: aio_pika.abc.AbstractConnection, db: asyncpg.Connection) -> None:
        epoch = await event_log.ensure(connection, db, self._retention, deleted=self._deleted)
        self._deleted = False
        if epoch != self.epoch:
            known = self.epoch is not None
            self.epoch, self.head, self._read_to = epoch, None, None
            self._marker = f"{self._name}.start.{uuid4().hex[:8]}"
            self.ready.clear()
            if known:
                await self._on_new_log()

    async def _publish_marker(self, connection: aio_pika.abc.AbstractConnection) -> None:
        channel = await open_channel(connection, publisher_confirms=True)
        try:
            await channel.default_exchange.publish(event_log.marker(self._marker or ""), event_log.LOG)
        finally:
            await channel.close()

    async def _consume(self, records: aio_pika.abc.AbstractQueueIterator) -> None:
        unacked = 0
        async for message in records:
            unacked += 1
            if unacked >= ACK_EVERY:  # on a stream an ack only grants credit: one for many
                await message.ack(multiple=True)
                unacked = 0
            position = event_log.offset_of(message)
            if self._read_to is not None and position <= self._read_to:
                continue  # `last` starts at the last chunk; a restart may overlap
            self._read_to = position
            if self.head is None:
                if event_log.is_marker(message) and message.message_id == self._marker:
                    self.head = position
                    self.ready.set()
                    log.info("stream.ready", epoch=self.epoch, head=position)
                continue
            self.head = position
            metrics.LOG_POSITION.set(position)
            with tracing.span("events.fanout", message.headers, topic=message.routing_key or ""):
                self._on_record(decode(message))  # to every live screen of its organisation

    async def _watch(
        self, channel: aio_pika.abc.AbstractChannel, records: aio_pika.abc.AbstractQueueIterator, db: asyncpg.Connection
    ) -> None:
        """A deleted log cancels our consumer without a word to the iterator; an epoch may change elsewhere."""
        # aiormq's Channel keeps its consumers; its AbstractChannel (what aio-pika declares it returns) does not say so.
        underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
        tag = records.consumer_tag  # type: ignore[attr-defined]  # QueueIterator has it, AbstractQueueIterator not
        loop = asyncio.get_running_loop()
        next_epoch_check = loop.time() + EPOCH_CHECK_SECONDS
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            self.loop.beat()
            if tag not in underlay.consumers:
                raise LogDeleted()
            if loop.time() >= next_epoch_check:
                next_epoch_check = loop.time() + EPOCH_CHECK_SECONDS
                if await event_log.read_epoch(db) != self.epoch:
                    raise NewEpoch()

    async def holds(self, start: int) -> bool:
        """Whether the log still holds what comes after `start`, by reading one record (and what a chunk
        holds before it): see `held`."""
        async with aclosing(self.replay(start, source="probe")) as records:
            async for position, _, _ in records:
                if position >= start:
                    return held(start, position)
        return False  # (a replay never ends by itself: it raises)

    async def replay(self, start: int, source: str = "log") -> AsyncGenerator[Record, None]:
        """Every record from `start` on, in order, read as the caller takes them (credit-based: at most
        REPLAY_PREFETCH wait in memory). Ends only when the caller stops: a connection that goes raises
        one of CONNECTION_ERRORS (ConnectionError when aio-pika's iterator merely stops). Each record read
        is counted in `crm_replay_records_total{source}`."""
        counted = metrics.REPLAY_RECORDS.labels(source)
        connection = self._connection
        if connection is None or _gone(connection):
            raise ConnectionError("the event log is not reachable")
        start = max(start, 0)  # (a client that saw nothing resumes from -1)
        channel = await open_channel(connection)
        try:
            await channel.set_qos(prefetch_count=REPLAY_PREFETCH)
            queue = await channel.declare_queue(event_log.LOG, passive=True)
            unacked = 0
            async for message in queue.iterator(arguments={"x-stream-offset": start}):
                unacked += 1
                if unacked >= ACK_EVERY:
                    await message.ack(multiple=True)
                    unacked = 0
                counted.inc()
                yield decode(message)
            # A stream has no end: aio-pika's iterator stops quietly only when its channel closed under it.
            raise ConnectionError("the event log's channel closed")
        finally:  # closing the channel cancels the consumer; what it still held is dropped, not requeued
            if not channel.is_closed:
                with suppress(*CONNECTION_ERRORS):
                    await channel.close()


def held(start: int, first: int) -> bool:
    """Whether a log whose first record read at or after `start` is `first` still holds what came after `start`.

    A position a client holds is always a record's (an event's, or the head's at its welcome), or -1: so the
    record at `start` itself must be there. Not `start + 1`: positions have holes (a stream gives an offset to
    each segment's tracking chunk, which no consumer gets); retention drops the oldest whole segments first.
    """
    return first == max(start, 0)


def _gone(connection: aio_pika.abc.AbstractConnection) -> bool:
    """Closed, closing, or lost: aio-pika's `is_closed` stays False after a lost connection; aiormq's is True."""
    transport = connection.transport
    return connection.is_closed or transport is None or transport.connection.is_closed


async def open_channel(
    connection: aio_pika.abc.AbstractConnection, publisher_confirms: bool = True
) -> aio_pika.abc.AbstractChannel:
    """A new channel, or ConnectionError when the connection is gone: aiormq refuses a channel on a lost
    connection with a bare RuntimeError ("<Connection ...> closed"), aio-pika on a closing one too
    ("Connection was not opened"). Any other RuntimeError is left as it is: a bug."""
    try:
        return await connection.channel(publisher_confirms=publisher_confirms)
    except RuntimeError as exc:
        if not _gone(connection):
            raise
        raise ConnectionError("the event log's connection is closed") from exc


async def _first_of(*jobs: Awaitable[None]) -> None:
    """Run until the first job ends; its exception (if any) is raised, the others are cancelled."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
