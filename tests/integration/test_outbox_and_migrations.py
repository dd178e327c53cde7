"""The outbox relay and the migration runner, against the real PostgreSQL and RabbitMQ."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import aio_pika
import asyncpg
import pytest

from shared import db, metrics, outbox, topology
from shared.contracts.envelope import Event
from shared.loops import Loop
from shared.outbox import Relay
from tests.support.infra import Infra
from tests.support.stack import eventually

LEADS_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "leads" / "migrations"


@pytest.fixture
async def schema(infra: Infra, amqp: aio_pika.abc.AbstractChannel) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    await topology.declare_exchanges(amqp)
    name = f"relay_{uuid4().hex[:8]}"
    pool = await db.create_pool(infra.database_url, name, size=4)
    await db.migrate(pool, name, [db.SHARED_MIGRATIONS])
    yield pool, name
    await pool.execute(f'DROP SCHEMA "{name}" CASCADE')
    await pool.close()


class Broker:
    """Publishes to the real `events` exchange with confirms; refuses the routing keys in `poison`."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, poison: set[str] = frozenset()):  # type: ignore[assignment]
        self.channel, self.poison, self.published = channel, poison, []

    async def __call__(self, routing_key: str, body: bytes, headers: dict, message_id: str, correlation_id) -> None:  # type: ignore[no-untyped-def]
        if routing_key in self.poison:
            raise RuntimeError(f"broker refused {routing_key}")
        exchange = await self.channel.get_exchange("events")
        await exchange.publish(aio_pika.Message(body, headers=headers, message_id=message_id), routing_key)
        self.published.append(json.loads(body)["id"])


async def write(pool: asyncpg.Pool, *types: str, commit: bool = True) -> list[str]:
    events = [Event(type=t, org_id="org-relay", data={"n": i}) for i, t in enumerate(types)]
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await outbox.add(conn, events)
        await (tx.commit() if commit else tx.rollback())
    return [str(e.id) for e in events]


async def rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT event_id::text, routing_key, attempts, last_error FROM outbox ORDER BY id")


async def empty(pool: asyncpg.Pool) -> bool:
    return await rows(pool) == []


async def run_relay(relay: Relay) -> asyncio.Task[None]:
    """As a service runs it: a loop of the relay's cycles (shared/loops.py), its LISTEN connection closed at the end."""

    async def run() -> None:
        try:
            await Loop("relay", relay.cycle, every=0, deadline=60).run()
        finally:
            await relay.close()

    return asyncio.create_task(run())


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_committed_events_are_published_and_rolled_back_ones_never(
    schema: tuple[asyncpg.Pool, str], infra: Infra, amqp: aio_pika.abc.AbstractChannel
) -> None:
    pool, name = schema
    broker = Broker(amqp)
    task = await run_relay(Relay(pool, infra.database_url, name, broker, poll_seconds=30))
    try:
        kept = await write(pool, "t.a", "t.b")
        await write(pool, "t.never", commit=False)
        # poll_seconds is 30: publishing this soon proves the NOTIFY woke the relay.
        await eventually(lambda: len(broker.published) == 2, 10, what="both committed events")
        assert broker.published == kept
        await eventually(lambda: empty(pool), 10, what="the published rows to be deleted")
    finally:
        await stop(task)


async def test_a_row_that_cannot_be_published_does_not_block_the_rows_behind_it(
    schema: tuple[asyncpg.Pool, str], infra: Infra, amqp: aio_pika.abc.AbstractChannel
) -> None:
    pool, name = schema
    broker = Broker(amqp, poison={"t.poison"})
    ids = await write(pool, "t.first", "t.poison", "t.after")
    relay = Relay(pool, infra.database_url, name, broker)
    assert await relay.publish_due() == 3
    assert broker.published == [ids[0], ids[2]]
    (left,) = await rows(pool)
    assert left["event_id"] == ids[1] and left["attempts"] == 1 and "broker refused" in left["last_error"]
    assert await relay.publish_due() == 0  # pushed back: not due again at once


async def test_a_relay_that_dies_mid_batch_loses_nothing(
    schema: tuple[asyncpg.Pool, str], infra: Infra, amqp: aio_pika.abc.AbstractChannel
) -> None:
    pool, name = schema
    stuck = asyncio.Event()

    async def hang(*_: object) -> None:
        stuck.set()
        await asyncio.Event().wait()  # the broker never confirms

    ids = await write(pool, "t.a", "t.b")
    dying = await run_relay(Relay(pool, infra.database_url, name, hang))
    await asyncio.wait_for(stuck.wait(), 10)
    await stop(dying)  # the process "dies" holding the rows
    broker = Broker(amqp)
    assert await Relay(pool, infra.database_url, name, broker).publish_due() == 2
    assert broker.published == ids


async def test_two_relays_publish_each_event_once(
    schema: tuple[asyncpg.Pool, str], infra: Infra, amqp: aio_pika.abc.AbstractChannel
) -> None:
    pool, name = schema
    broker = Broker(amqp)
    ids = await write(pool, *["t.many"] * 300)
    relays = [Relay(pool, infra.database_url, name, broker, batch=20) for _ in range(2)]
    tasks = [await run_relay(r) for r in relays]
    try:
        await eventually(lambda: len(broker.published) >= 300, 20, what="all 300 events")
        assert sorted(broker.published) == sorted(ids)
    finally:
        await stop(*tasks)


async def test_migrations_started_at_once_apply_once(infra: Infra) -> None:
    name = f"migrate_{uuid4().hex[:8]}"
    pools = [await db.create_pool(infra.database_url, name, size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrate(p, name, [db.SHARED_MIGRATIONS, LEADS_MIGRATIONS]) for p in pools))
        applied = [version for result in results for version in result]
        files = sorted(
            f"{d.parent.name}/{f.name}" for d in (db.SHARED_MIGRATIONS, LEADS_MIGRATIONS) for f in d.glob("*.sql")
        )
        assert {"leads/001_leads.sql", "shared/001_inbox_outbox.sql"} <= set(files)
        assert sorted(applied) == files  # each file once, whichever instance applied it
        assert await pools[0].fetchval("SELECT count(*) FROM schema_migrations") == len(files)
        assert await db.migrate(pools[0], name, [db.SHARED_MIGRATIONS, LEADS_MIGRATIONS]) == []
    finally:
        await pools[0].execute(f'DROP SCHEMA "{name}" CASCADE')
        for pool in pools:
            await pool.close()


async def test_an_instance_waits_for_another_migration_longer_than_its_lock_timeout(infra: Infra) -> None:
    """Under load a migration outlasted the pool's lock timeout and the second instance exited on
    LockNotAvailableError: it now waits, and its connections keep the pool's timeouts afterwards."""
    name = f"migrate_{uuid4().hex[:8]}"
    holder = await db.create_pool(infra.database_url, name, size=1)
    waiter = await db.create_pool(infra.database_url, name, size=1, lock_timeout_ms=50, statement_timeout_ms=5000)
    try:
        async with holder.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrations:{name}")
            migrating = asyncio.create_task(db.migrate(waiter, name, [db.SHARED_MIGRATIONS]))
            # The waiter has waited four of its lock timeouts, and is still waiting (not failed).
            await eventually(
                lambda: (
                    migrating.done()
                    or conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
                        "'%pg_advisory_lock%' AND now() - query_start > interval '200 ms' AND pid <> pg_backend_pid()"
                    )
                ),
                timeout=10,
            )
            assert not migrating.done()
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrations:{name}")
        assert await asyncio.wait_for(migrating, 10)
        assert await waiter.fetchval("SHOW lock_timeout") == "50ms"
    finally:
        await holder.execute(f'DROP SCHEMA "{name}" CASCADE')
        await holder.close()
        await waiter.close()


async def test_a_relay_whose_round_fails_unexpectedly_goes_on(
    schema: tuple[asyncpg.Pool, str], infra: Infra, amqp: aio_pika.abc.AbstractChannel
) -> None:
    """A bug in a round (not a connection error) used to end the relay for good: now the loop logs it, counts
    it, backs off and the next round publishes."""
    pool, name = schema
    broker = Broker(amqp)
    relay = Relay(pool, infra.database_url, name, broker, poll_seconds=0.1)
    real, failures = relay.publish_due, []

    async def fails_once() -> int:
        if not failures:
            failures.append(1)
            raise KeyError("a bug in one round")
        return await real()

    relay.publish_due = fails_once  # type: ignore[method-assign]
    errors = metrics.BACKGROUND_ERRORS.labels("relay")._value.get()
    ids = await write(pool, "t.after_a_bug")
    task = await run_relay(relay)
    try:
        await eventually(lambda: broker.published == ids, 15, what="the event, published by a later round")
        assert metrics.BACKGROUND_ERRORS.labels("relay")._value.get() == errors + 1
    finally:
        await stop(task)
