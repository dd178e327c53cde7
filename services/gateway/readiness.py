"""GET /readyz: public, so a flood of it must cost the database and the broker (almost) nothing.

Guarantee: the checks run at most once per `every` (1 s) per gateway process, whatever the number
of requests; the database is asked over one connection kept open (replaced at once when found
broken), never over one per request.

    request ──last check started < 1 s ago──► its result (or, while it runs, the wait for it)
            ──older──► a new check, that every request arriving meanwhile shares

Ready (200): the gateway's own checks (broker, database, event log) pass, and no service answered
`"ready": false` (those are named, with their reasons, in `not_ready`). A service that does not
answer at all is shown (`"answer": null`), not judged: commands wait in its queue until it is back.
"""

import asyncio
import time
from contextlib import suppress
from typing import Any
from uuid import uuid4

import asyncpg

from services.gateway.bus import Bus, Unavailable
from services.gateway.ws import Hub
from shared import db, logging, topology

DATABASE_TIMEOUT = 2.0
HEALTH_WAIT = 1.0
DATABASE_ERRORS = db.ERRORS
log = logging.get("gateway.readiness")


class Readiness:
    def __init__(self, bus: Bus, hub: Hub, database_url: str, services: list[str], every: float = 1.0):
        self._bus, self._hub, self._database_url, self._services, self._every = bus, hub, database_url, services, every
        self._conn: asyncpg.Connection | None = None
        self._check: asyncio.Task[tuple[int, dict[str, Any]]] | None = None
        self._started = 0.0

    async def answer(self) -> tuple[int, dict[str, Any]]:
        if self._check is None or (self._check.done() and time.monotonic() - self._started >= self._every):
            self._started = time.monotonic()
            self._check = asyncio.create_task(self._run())
        return await asyncio.shield(self._check)  # a request that goes away does not cancel the others' check

    async def close(self) -> None:
        if self._check is not None:
            self._check.cancel()
            with suppress(asyncio.CancelledError):
                await self._check
        if self._conn is not None:
            with suppress(*DATABASE_ERRORS):
                await self._conn.close(timeout=DATABASE_TIMEOUT)

    async def _run(self) -> tuple[int, dict[str, Any]]:
        started = time.monotonic()
        database, *answers = await asyncio.gather(
            self._database(), *(service_health(self._bus, name) for name in self._services)
        )
        reader = self._hub.reader
        # The log reader: connected, and its session beating (shared/loops.py: not stuck past its deadline).
        event_log = bool(reader and reader.connected and reader.loop.overdue is None)
        checks = {"broker": self._bus.ready, "database": database, "event_log": event_log}
        status, body = judge(checks, dict(zip(self._services, answers, strict=True)))
        return status, {**body, "took_ms": round((time.monotonic() - started) * 1000, 1)}

    async def _database(self) -> bool:
        if self._conn is not None and await _answers(self._conn):
            return True
        if self._conn is not None:  # broken (a restarted server, a cut connection): replaced now, not next time
            self._conn.terminate()
            self._conn = None
        try:
            self._conn = await asyncpg.connect(
                self._database_url, timeout=DATABASE_TIMEOUT, server_settings={"application_name": "gateway.readyz"}
            )
        except DATABASE_ERRORS as exc:
            log.warning("readyz.database_unreachable", error=repr(exc))
            return False
        return await _answers(self._conn)


async def _answers(conn: asyncpg.Connection) -> bool:
    try:
        return await conn.fetchval("SELECT 1", timeout=DATABASE_TIMEOUT) == 1
    except DATABASE_ERRORS:
        return False


def judge(checks: dict[str, bool], services: dict[str, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    not_ready = {
        name: list(answer.get("reasons") or []) for name, answer in services.items() if answer.get("ready") is False
    }
    ready = all(checks.values()) and not not_ready
    return (200 if ready else 503), {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "services": services,
        "not_ready": not_ready,
    }


async def service_health(bus: Bus, service: str) -> dict[str, Any]:
    try:
        answer = await bus.call(
            topology.QUERIES,
            f"{service}.query.health",
            b"{}",
            message_id=str(uuid4()),
            correlation_id=uuid4().hex,
            org="_gateway",
            user="_gateway",
            wait=HEALTH_WAIT,
            persistent=False,
        )
    except Unavailable:
        answer = None
    if answer is None or answer.status != 200 or not isinstance(answer.body, dict):
        return {"service": service, "answer": None}
    return answer.body
