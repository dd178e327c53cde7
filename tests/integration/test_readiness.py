"""/readyz's checks against the real PostgreSQL: shared by concurrent requests, made at most once per period,
over one kept connection that is replaced at once when the server cut it."""
import asyncio
from collections.abc import AsyncIterator
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


async def backends(admin: asyncpg.Connection) -> list[int]:
    """The pids of the checks' connections to this run's database."""
    return [r["pid"] for r in await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'gateway.readyz' AND datname = current_database()")]


def checker(infra: Infra, every: float) -> tuple[Readiness, Bus]:
    bus = Bus()
    hub = SimpleNamespace(reader=SimpleNamespace(connected=True, loop=SimpleNamespace(overdue=None)))
    return Readiness(bus, hub, infra.database_url, ["leads", "sms"], every=every), bus  # type: ignore[arg-type]


async def test_concurrent_requests_share_one_check_and_one_connection(infra: Infra, admin: asyncpg.Connection) -> None:
    ready, bus = checker(infra, every=3600)
    try:
        answers = await asyncio.gather(*(ready.answer() for _ in range(200)))
        answers += await asyncio.gather(*(ready.answer() for _ in range(200)))  # after it: the same result
        assert len(await backends(admin)) == 1 and bus.queries == 2  # one health query per service, once
        assert {status for status, _ in answers} == {200}
        assert all(body is answers[0][1] for _, body in answers)
    finally:
        await ready.close()


async def test_a_later_check_reuses_the_connection_and_replaces_a_cut_one_at_once(
        infra: Infra, admin: asyncpg.Connection) -> None:
    ready, bus = checker(infra, every=0)
    try:
        assert (await ready.answer())[0] == 200
        (first,) = await backends(admin)
        assert (await ready.answer())[0] == 200
        assert await backends(admin) == [first] and bus.queries == 4
        await admin.execute("SELECT pg_terminate_backend($1)", first)  # as a server restart would
        status, body = await ready.answer()
        assert (status, body["checks"]["database"]) == (200, True)  # this check, not the next, has a new one
        (second,) = await backends(admin)
        assert second != first
    finally:
        await ready.close()
