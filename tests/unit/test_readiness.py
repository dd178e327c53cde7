"""/readyz's checks: shared by concurrent requests, made at most once per period, over one kept connection;
and how the services' answers are judged."""
import asyncio
from types import SimpleNamespace

import asyncpg
import pytest

from services.gateway import readiness
from services.gateway.bus import Unavailable
from services.gateway.readiness import Readiness, judge


class FakeConnection:
    def __init__(self) -> None:
        self.broken = False
        self.terminated = False

    async def fetchval(self, query: str, timeout: float) -> int:
        await asyncio.sleep(0)  # a real round trip: requests arriving meanwhile share the check
        if self.broken:
            raise asyncpg.InterfaceError("connection is closed")
        return 1

    def terminate(self) -> None:
        self.terminated = True

    async def close(self, timeout: float) -> None:
        pass


class Bus:
    ready = True
    queries = 0

    async def call(self, *args: object, **kwargs: object) -> None:
        self.queries += 1
        raise Unavailable("not in a unit test")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[FakeConnection]:
    connections: list[FakeConnection] = []

    async def connect(*args: object, **kwargs: object) -> FakeConnection:
        connections.append(FakeConnection())
        return connections[-1]

    monkeypatch.setattr(readiness.asyncpg, "connect", connect)
    return connections


def checker(every: float) -> tuple[Readiness, Bus]:
    bus = Bus()
    hub = SimpleNamespace(reader=SimpleNamespace(connected=True, loop=SimpleNamespace(overdue=None)))
    return Readiness(bus, hub, "postgresql://unused", ["leads", "sms"], every=every), bus  # type: ignore[arg-type]


async def test_concurrent_requests_share_one_check_and_one_connection(opened: list[FakeConnection]) -> None:
    ready, bus = checker(every=3600)
    answers = await asyncio.gather(*(ready.answer() for _ in range(200)))
    answers += await asyncio.gather(*(ready.answer() for _ in range(200)))  # after it: the same result
    assert len(opened) == 1 and bus.queries == 2  # one health query per service, once
    assert {status for status, _ in answers} == {200}
    assert all(body is answers[0][1] for _, body in answers)


async def test_a_later_check_reuses_the_connection_and_replaces_a_broken_one_at_once(
        opened: list[FakeConnection]) -> None:
    ready, bus = checker(every=0)
    assert (await ready.answer())[0] == 200
    assert (await ready.answer())[0] == 200
    assert len(opened) == 1 and bus.queries == 4
    opened[0].broken = True  # e.g. the server restarted
    status, body = await ready.answer()
    assert (status, body["checks"]["database"]) == (200, True)
    assert len(opened) == 2 and opened[0].terminated
    await ready.close()


def test_a_service_that_says_it_is_not_ready_is_named_and_makes_it_503() -> None:
    checks = {"broker": True, "database": True, "event_log": True}
    services = {"leads": {"service": "leads", "ready": True},
                "sms": {"service": "sms", "ready": False, "reasons": ["2 messages held past 60 s"]},
                "documents": {"service": "documents", "answer": None}}  # silent: shown, not judged
    status, body = judge(checks, services)
    assert (status, body["status"], body["not_ready"]) == (503, "not ready", {"sms": ["2 messages held past 60 s"]})
    assert body["services"] == services
    del services["sms"]
    assert judge(checks, services)[0] == 200 and judge(checks, services)[1]["not_ready"] == {}
    assert judge({**checks, "database": False}, services)[0] == 503
