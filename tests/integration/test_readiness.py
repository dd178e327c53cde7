"""/readyz's checks against the real PostgreSQL: shared by concurrent requests, made at most once per period,
over one kept connection that is replaced at once when the server cut it."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import asyncpg
import pytest

from services.gateway.bus import Unavailable
from services.gateway.readiness import Readiness
from tests.support.infra import Infra


class Bus:
    """The broker side is not the point here: every service's health query goes unanswered."""

    ready = True
    queries = 0

    async def call(self, *args: object, **kwargs: object) -> None:
        self.queries += 1
        raise Unavailable("not asked in this test")


@pytest.fixture
async def admin(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(infra.database_url)
    yield conn
    await conn.close()


async def readyz_backends(admin: asyncpg.Connection) -> set[int]:
    return {
        r["pid"]
        for r in await admin.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = 'gateway.readyz' AND datname = current_database()"
        )
    }


@pytest.fixture
async def backends(admin: asyncpg.Connection) -> Callable[[], Awaitable[list[int]]]:
    """The pids of this test's checks' connections: the gateways of stacks that other tests of the session
    left running share the database (and the application name), so theirs, there before, are not counted."""
    before = await readyz_backends(admin)

    async def new() -> list[int]:
        return sorted(await readyz_backends(admin) - before)

    return new


def checker(infra: Infra, every: float) -> tuple[Readiness, Bus]:
    bus = Bus()
    hub = SimpleNamespace(reader=SimpleNamespace(connected=True, loop=SimpleNamespace(overdue=None)))
    return Readiness(bus, hub, infra.database_url, ["leads", "sms"], every=every), bus  # type: ignore[arg-type]


async def test_concurrent_requests_share_one_check_and_one_connection(
    infra: Infra, backends: Callable[[], Awaitable[list[int]]]
) -> None:
    ready, bus = checker(infra, every=3600)
    try:
        answers = await asyncio.gather(*(ready.answer() for _ in range(200)))
        answers += await asyncio.gather(*(ready.answer() for _ in range(200)))  # after it: the same result
        assert len(await backends()) == 1 and bus.queries == 2  # one health query per service, once
        assert {status for status, _ in answers} == {200}
        assert all(body is answers[0][1] for _, body in answers)
    finally:
        await ready.close()


async def test_a_later_check_reuses_the_connection_and_replaces_a_cut_one_at_once(
    infra: Infra, admin: asyncpg.Connection, backends: Callable[[], Awaitable[list[int]]]
) -> None:
    ready, bus = checker(infra, every=0)
    try:
        assert (await ready.answer())[0] == 200
        (first,) = await backends()
        assert (await ready.answer())[0] == 200
        assert await backends() == [first] and bus.queries == 4
        await admin.execute("SELECT pg_terminate_backend($1)", first)  # as a server restart would
        status, body = await ready.answer()
        assert (status, body["checks"]["database"]) == (200, True)  # this check, not the next, has a new one
        (second,) = await backends()
        assert second != first
    finally:
        await ready.close()
