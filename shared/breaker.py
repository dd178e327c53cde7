"""A circuit breaker in resilience4j's shape: stop calling a provider that keeps failing, try again later.

Guarantee: while OPEN, `allow()` answers False, so no call reaches the provider;
after `wait_open` seconds at most `half_open_calls` trial calls are let through,
and their outcome alone decides whether calls flow again.

    CLOSED ──failure or slow rate ≥ threshold over the last `window` calls (once `min_calls` are in)──► OPEN
    OPEN ──`wait_open` seconds──► HALF_OPEN: `half_open_calls` trials, then
         ├─ their rates below the thresholds ──► CLOSED (a fresh window)
         └─ otherwise ──────────────────────────► OPEN (wait again)

What a failure is belongs to the caller: record a transient failure (timeout,
429, 5xx, connection refused) with `record_failure`, and a permanent refusal
(invalid number, opted-out recipient) with `record_success`: the provider
answered as it should, and one bad number must not stop messages to everyone.
Every call `allow()` let through must be recorded, or HALF_OPEN waits for it.

Pure: no I/O, no tasks, no sleeps; time comes from `clock` (monotonic seconds)
so tests move it by hand. Not thread-safe: use it from one event loop.
"""

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerConfig:
    window: int = 20  # the last N calls judged in CLOSED
    min_calls: int = 10  # no judgement before this many calls are in the window
    failure_rate: float = 50.0  # percent; at or above it the breaker opens
    slow_call_duration: float | None = None  # seconds; a longer call is slow. None: no call is slow
    slow_call_rate: float = 100.0  # percent of slow calls at or above which it opens
    wait_open: float = 30.0  # seconds OPEN before trial calls are allowed
    half_open_calls: int = 3  # trial calls in HALF_OPEN

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_calls < 1 or self.half_open_calls < 1:
            raise ValueError("window, min_calls and half_open_calls must be at least 1")
        if not (0 < self.failure_rate <= 100 and 0 < self.slow_call_rate <= 100):
            raise ValueError("rates are percentages in (0, 100]")
        if self.wait_open < 0 or (self.slow_call_duration is not None and self.slow_call_duration < 0):
            raise ValueError("durations must not be negative")


@dataclass(frozen=True)
class _Outcome:
    failed: bool
    slow: bool


OnChange = Callable[[State, State], None]


class CircuitBreaker:
    def __init__(
        self,
        config: BreakerConfig = BreakerConfig(),
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: OnChange | None = None,
    ):
        self.config = config
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        self._window: deque[_Outcome] = deque(maxlen=config.window)
        self._trials: list[_Outcome] = []
        self._permits = 0
        self._opened_at = 0.0

    @property
    def state(self) -> State:
        """The current state; an OPEN breaker whose wait is over reads (and becomes) HALF_OPEN."""
        self._tick()
        return self._state

    def allow(self) -> bool:
        """May a call go to the provider now? In HALF_OPEN each True is one of the few trial permits."""
        self._tick()
        if self._state is State.CLOSED:
            return True
        if self._state is State.HALF_OPEN and self._permits < self.config.half_open_calls:
            self._permits += 1
            return True
        return False

    def release(self) -> None:
        """Give back a permit whose call never reached the provider (our own failure): no outcome is recorded."""
        if self._state is State.HALF_OPEN and self._permits > 0:
            self._permits -= 1

    def retry_in(self) -> float:
        """Seconds until an OPEN breaker lets trial calls through (0 when it is not OPEN)."""
        self._tick()
        if self._state is not State.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.wait_open - self._clock())

    def record_success(self, duration: float) -> None:
        """A call that got its answer (including a permanent refusal) after `duration` seconds."""
        self._record(_Outcome(failed=False, slow=self._slow(duration)))

    def record_failure(self, duration: float) -> None:
        """A call that failed transiently (timeout, 429, 5xx, network) after `duration` seconds."""
        self._record(_Outcome(failed=True, slow=self._slow(duration)))

    def _slow(self, duration: float) -> bool:
        limit = self.config.slow_call_duration
        return limit is not None and duration > limit

    def _record(self, outcome: _Outcome) -> None:
        self._tick()
        if self._state is State.CLOSED:
            self._window.append(outcome)
            if len(self._window) >= min(self.config.min_calls, self.config.window) and self._tripped(self._window):
                self._move(State.OPEN)
        elif self._state is State.HALF_OPEN:
            self._trials.append(outcome)
            if len(self._trials) >= self.config.half_open_calls:
                self._move(State.OPEN if self._tripped(self._trials) else State.CLOSED)
        # OPEN: the call started before the breaker opened; its outcome changes nothing.

    def _tripped(self, outcomes: Iterable[_Outcome]) -> bool:
        seen = list(outcomes)
        failure_rate = 100 * sum(o.failed for o in seen) / len(seen)
        slow_rate = 100 * sum(o.slow for o in seen) / len(seen)
        slow_tripped = self.config.slow_call_duration is not None and slow_rate >= self.config.slow_call_rate
        return failure_rate >= self.config.failure_rate or slow_tripped

    def _tick(self) -> None:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.config.wait_open:
            self._move(State.HALF_OPEN)

    def _move(self, new: State) -> None:
        old, self._state = self._state, new
        if new is State.OPEN:
            self._opened_at = self._clock()
        elif new is State.HALF_OPEN:
            self._trials, self._permits = [], 0
        self._window.clear()  # every state judges only what happened since it began
        if self._on_change is not None:
            self._on_change(old, new)
