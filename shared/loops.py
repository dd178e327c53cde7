"""Background loops that never die, and that say when they are stuck.

Guarantee: a loop run by `Loop.run` goes on until it is cancelled, whatever its cycle raises. An
unexpected exception is logged with its traceback, counted (`crm_background_errors_total{loop}`),
and the cycle is tried again after a backoff (exponential with jitter: tenacity's, not a loop of ours);
a server that is away (the database or the broker restarting) is expected: logged in one line, counted
the same, backed off the same. A cycle running longer than its deadline makes the loop `overdue`,
which the process reports as not ready (`Service` health, the gateway's /readyz).

    run ─► cycle ── ok ──► sleep(every) ─► cycle ...
             └── raises ──► log + count ──► wait (0.5 s, 1 s, 2 s ... 30 s, jittered) ──► cycle

A cycle that runs for good by design (a stream reader) calls `beat()` while it makes progress: the
deadline counts from its last beat.
"""

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable

import aio_pika
import aiormq
import asyncpg
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from shared import logging, metrics

log = logging.get("loops")
STOP_SECONDS = 10.0  # how long `Loop.stop` waits for a cancelled cycle to unwind

# What "the database or the broker is not there (now)" raises. OSError: refused, reset, timed out, a name
# not resolved, asyncpg's "Multiple exceptions" (one per address), aio-pika's AMQPConnectionError;
# PostgreSQL starting, stopping or full; every host of a DATABASE_URL up but none taking writes (a failover
# under way: no standby promoted yet, docs/postgres-failover.md); a channel or connection that went.
UNREACHABLE = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.TargetServerAttributeNotMatched,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    aio_pika.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ConnectionClosed,
    aiormq.exceptions.ChannelClosed,
)
# No use waiting: refused credentials, a certificate, a file (a migration) missing or unreadable.
REFUSED = (
    aio_pika.exceptions.ProbableAuthenticationError,
    aio_pika.exceptions.AuthenticationError,
    ssl.SSLError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
)


def unreachable(exc: BaseException) -> bool:
    return isinstance(exc, UNREACHABLE) and not isinstance(exc, REFUSED)


class Loop:
    """`cycle` every `every` seconds (after `first_after`); `deadline`: how long one cycle may take."""

    def __init__(
        self,
        name: str,
        cycle: Callable[[], Awaitable[object]],
        *,
        every: float,
        deadline: float,
        first_after: float = 0.0,
        backoff: tuple[float, float] = (0.5, 30.0),
    ):
        """`backoff`: the first and the longest wait after a failed cycle."""
        self.name, self.cycle, self.every, self.deadline = name, cycle, every, deadline
        self.first_after = first_after
        self.failures = 0  # in a row
        self._task: asyncio.Task[None] | None = None  # (`start`)
        self._since: float | None = None  # when the cycle under way started (or last beat); None between cycles
        first, longest = backoff
        self._retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            before_sleep=self._failed,
            wait=wait_exponential_jitter(multiplier=first, max=longest, jitter=first),
        )

    @property
    def overdue(self) -> float | None:
        """Seconds the cycle under way has run past its deadline's start, when past the deadline; else None."""
        if self._since is None:
            return None
        running = time.monotonic() - self._since
        return running if running > self.deadline else None

    def beat(self) -> None:
        self._since = time.monotonic()

    def start(self) -> None:
        """Run in a task of its own, until `stop`."""
        self._task = asyncio.create_task(self.run())

    async def stop(self, within: float = STOP_SECONDS) -> None:
        """Cancel the loop and wait for its cycle to unwind (closing what it holds), at most `within` seconds:
        a close the other side never answers must not keep a process from stopping."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=within)
            if not done:
                log.warning("loop.stop_overdue", loop=self.name, within=within)
            elif not task.cancelled() and task.exception() is not None:
                log.error("loop.stopped_failing", loop=self.name, error=repr(task.exception())[:500])

    async def run(self) -> None:
        await asyncio.sleep(self.first_after)
        while True:
            await self.once()
            await asyncio.sleep(self.every)

    async def once(self) -> None:
        """One cycle, tried again (with backoff) until it ends without an exception. The cycle runs on its own
        first: tenacity's rounds (~15 µs each) only once it failed, for the relay's cycle is on a press's path."""
        try:
            return await self._timed()
        except Exception as exc:  # noqa: BLE001
            failed: Exception | None = exc
        async for attempt in self._retrying:
            with attempt:
                if failed is not None:  # the first failure, counted and backed off like the ones after it
                    first, failed = failed, None
                    raise first
                await self._timed()
        self.failures = 0

    async def _timed(self) -> None:
        self.beat()
        try:
            await self.cycle()
        finally:
            self._since = None

    def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.failures += 1
        metrics.BACKGROUND_ERRORS.labels(self.name).inc()
        if exc is not None and unreachable(exc):
            log.warning("loop.failed", loop=self.name, failures=self.failures, error=repr(exc)[:500])
        else:
            log.error("loop.failed", loop=self.name, failures=self.failures, error=repr(exc)[:500], exc_info=exc)


def overdue(loops: list[Loop]) -> list[str]:
    """Why the process is not ready, one line per loop past its deadline."""
    return [
        f"loop {loop.name} has run a cycle for {late:.0f} s (deadline {loop.deadline:.0f} s)"
        for loop in loops
        if (late := loop.overdue) is not None
    ]
