"""The event log's archive (services/gateway/archive.py) on the real broker and PostgreSQL, in a deployment of its
own: one archiver writes at a time and another takes over from its head; every organisation's record is in once,
as the frame a live screen gets, markers and events of nobody are not; a new log empties it; what the log's
retention dropped is pruned."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
import pytest

from services.gateway.archive import Archiver
from shared import event_log
from tests.support import infra as infra_mod
from tests.support.realtime import envelope, publish_events
from tests.support.stack import eventually

BIG = event_log.Retention("1D", 10**8, 10**6)


@pytest.fixture
async def own() -> AsyncIterator[tuple[infra_mod.Infra, aio_pika.abc.AbstractConnection, asyncpg.Connection]]:
    infra = await infra_mod.provision()
    connection = await aio_pika.connect(infra.amqp_url)
    db = await asyncpg.connect(infra.database_url)
    try:
        yield infra, connection, db
    finally:
        await db.close()
        await connection.close()
        await infra_mod.release(infra)


@pytest.fixture
async def archivers(own: Any) -> AsyncIterator[Callable[..., Awaitable[Archiver]]]:
    """Started archivers of the test's deployment, stopped at teardown even when the test timed out (pytest-timeout
    leaves a test's own `finally` unrun: an archiver left running would go on into the next tests)."""
    infra = own[0]
    started: list[Archiver] = []

    async def start(name: str, **options: Any) -> Archiver:
        archiver = Archiver(infra.amqp_url, infra.database_url, name, **options)
        started.append(archiver)
        await archiver.start()
        return archiver

    yield start
    for archiver in started:
        await archiver.stop()


async def state(db: asyncpg.Connection) -> dict[str, Any]:
    found = await db.fetchrow("SELECT epoch, tail, head FROM event_log.archive")
    return dict(found) if found else {}


async def rows(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("SELECT org_id, position, topic, event_id, frame FROM event_log.records ORDER BY position")


async def head_at_least(db: asyncpg.Connection, position: int) -> bool:
    try:
        head = (await state(db)).get("head")
    except asyncpg.UndefinedTableError:
        return False
    return head is not None and head >= position


async def test_one_archiver_at_a_time_takes_every_record_once_and_a_new_log_empties_it(
    own: Any, archivers: Callable[..., Awaitable[Archiver]]
) -> None:
    _, connection, db = own
    epoch = await event_log.ensure(connection, db, BIG)
    first, second = await archivers("first"), await archivers("second")
    channel = await connection.channel()
    async with asyncio.timeout(150):  # (a hang says where it was, before pytest-timeout's 180 s)
        events = [envelope(f"org-{i % 3}", "tests.tick", n=i) for i in range(300)]
        await publish_events(channel, events[:150])
        await channel.default_exchange.publish(event_log.marker("a-marker"), event_log.LOG)  # nobody's
        await channel.default_exchange.publish(aio_pika.Message(b'{"id": "no-org"}'), event_log.LOG)
        await channel.default_exchange.publish(aio_pika.Message(b"not json"), event_log.LOG)
        await eventually(lambda: head_at_least(db, 152), 30, what="the first archiver to archive")
        assert [first.archiving, second.archiving].count(True) == 1
        writer, standby = (first, second) if first.archiving else (second, first)
        await writer.stop()  # its session, and the lock, go
        await publish_events(channel, events[150:])
        await eventually(lambda: head_at_least(db, 302), 30, what="the other archiver to take over")
        assert standby.archiving

        archived = await rows(db)
        ids = [r["event_id"] for r in archived]
        assert sorted(ids) == sorted(e["id"] for e in events)  # each once, none of nobody
        assert [r["position"] for r in archived] == [*range(150), *range(153, 303)]
        frame = json.loads(archived[0]["frame"])
        assert (frame["type"], frame["position"], frame["epoch"], frame["id"]) == ("event", 0, epoch, ids[0])
        assert archived[0]["topic"] == "tests.tick" and archived[0]["org_id"].startswith("org-")
        assert frame["data"] == next(e["data"] for e in events if e["id"] == ids[0])
        assert await state(db) == {"epoch": epoch, "tail": 0, "head": 302}

        await channel.queue_delete(event_log.LOG)  # a new log: what was archived is another log's
        new = await event_log.ensure(connection, db, BIG, deleted=True)
        await publish_events(channel, [envelope("org-0", "tests.tick", n=i) for i in range(5)])
        await eventually(lambda: _state_is(db, {"epoch": new, "tail": 0, "head": 4}), 60, what="the new log archived")
        assert [r["position"] for r in await rows(db)] == [0, 1, 2, 3, 4]


async def test_what_the_retention_dropped_is_pruned(own: Any, archivers: Callable[..., Awaitable[Archiver]]) -> None:
    _, connection, db = own
    await event_log.ensure(connection, db, event_log.Retention("1D", 20_000, 4_000))
    await archivers("pruning", prune_every=0.2)
    channel = await connection.channel()
    async with asyncio.timeout(150):
        for start in range(0, 400, 20):  # in steps, as the log's own retention test does
            await publish_events(channel, [envelope("org-0", n=i, pad="x" * 200) for i in range(start, start + 20)])
            await eventually(lambda start=start: head_at_least(db, start + 19), 30, what="the archive to follow")
        # exactly the log's records from the tail on (positions have holes: a segment's tracking chunk has one)
        await eventually(lambda: _as_the_log(connection, db), 30, what="the archive to hold what the log holds")
        assert (await state(db))["tail"] > 0  # (what the log dropped went)


async def read_log(connection: aio_pika.abc.AbstractConnection, start: int, head: int) -> list[tuple[int, str]]:
    """(position, event id) of the log's records in [start, head], read straight from the broker."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=100)
    queue = await channel.declare_queue(event_log.LOG, passive=True)
    found: list[tuple[int, str]] = []
    async with asyncio.timeout(30):
        async for message in queue.iterator(arguments={"x-stream-offset": start}):
            await message.ack()
            position = event_log.offset_of(message)
            if position >= start:
                found.append((position, json.loads(message.body)["id"]))
            if position >= head:
                break
    await channel.close()
    return found


async def _state_is(db: asyncpg.Connection, expected: dict[str, Any]) -> bool:
    return await state(db) == expected


async def _as_the_log(connection: aio_pika.abc.AbstractConnection, db: asyncpg.Connection) -> bool:
    held = await state(db)
    kept = [(r["position"], r["event_id"]) for r in await rows(db)]
    return held["tail"] > 0 and kept == await read_log(connection, held["tail"], held["head"])


async def test_a_hostile_record_is_passed_over_and_never_stalls_the_archive(
    own: Any, archivers: Callable[..., Awaitable[Archiver]]
) -> None:
    """Anyone may publish to `events`: an organisation too long for the index, NUL characters (PostgreSQL's
    text refuses them), a body that is no object. Each is nobody's; what follows is archived."""
    _, connection, db = own
    await event_log.ensure(connection, db, BIG)
    await archivers("hostile")
    channel = await connection.channel()
    async with asyncio.timeout(150):
        hostile = [
            {**envelope("x" * 10_000), "id": "too-long"},
            {**envelope("org\x00nul"), "id": "nul-org"},
            {**envelope("org-0"), "id": "nul\x00id"},
        ]
        for event in hostile:
            body = json.dumps(event).encode()
            await channel.default_exchange.publish(aio_pika.Message(body), event_log.LOG)
        await channel.default_exchange.publish(aio_pika.Message(b"[1, 2]"), event_log.LOG)
        fine = envelope("org-0")
        await publish_events(channel, [fine])
        await eventually(lambda: head_at_least(db, 4), 30, what="the archive to pass the hostile records")
        assert [r["event_id"] for r in await rows(db)] == [fine["id"]]
