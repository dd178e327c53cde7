import pytest

from shared.breaker import BreakerConfig, CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, changes: list[tuple[State, State]] | None = None, **config: object) -> CircuitBreaker:
    on_change = (lambda old, new: changes.append((old, new))) if changes is not None else None
    return CircuitBreaker(BreakerConfig(**config), clock=clock, on_change=on_change)  # type: ignore[arg-type]


def calls(b: CircuitBreaker, failures: int = 0, successes: int = 0, duration: float = 0.01) -> None:
    for _ in range(failures):
        assert b.allow()
        b.record_failure(duration)
    for _ in range(successes):
        assert b.allow()
        b.record_success(duration)


def open_breaker(b: CircuitBreaker) -> None:
    calls(b, failures=b.config.min_calls)
    assert b.state is State.OPEN


def test_defaults_are_resilience4j_like() -> None:
    assert BreakerConfig() == BreakerConfig(
        window=20,
        min_calls=10,
        failure_rate=50.0,
        slow_call_duration=None,
        slow_call_rate=100.0,
        wait_open=30.0,
        half_open_calls=3,
    )


def test_failures_before_the_minimum_number_of_calls_do_not_open_it(clock: Clock) -> None:
    b = breaker(clock)
    calls(b, failures=9)
    assert b.state is State.CLOSED and b.allow()
    b.record_failure(0.01)  # the tenth call: 10 failures out of 10
    assert b.state is State.OPEN


def test_it_opens_at_the_threshold_not_below(clock: Clock) -> None:
    below = breaker(clock)
    calls(below, successes=6, failures=4)  # 40 %
    assert below.state is State.CLOSED
    at = breaker(clock)
    calls(at, successes=5, failures=5)  # 50 %
    assert at.state is State.OPEN


def test_only_the_last_window_of_calls_counts(clock: Clock) -> None:
    b = breaker(clock, window=10, min_calls=10)
    calls(b, failures=4, successes=6)  # 40 %: closed
    calls(b, successes=4)  # the 4 failures slid out of the window
    calls(b, failures=4)  # 4 of the last 10
    assert b.state is State.CLOSED
    calls(b, failures=1)  # 5 of the last 10
    assert b.state is State.OPEN


def test_no_call_is_allowed_while_open(clock: Clock) -> None:
    b = breaker(clock)
    open_breaker(b)
    clock.now += 29.9
    assert not any(b.allow() for _ in range(100))
    assert b.state is State.OPEN
    assert b.retry_in() == pytest.approx(0.1)


def test_half_open_after_the_wait_allows_only_the_trial_calls(clock: Clock) -> None:
    b = breaker(clock)
    open_breaker(b)
    clock.now += 30
    assert b.state is State.HALF_OPEN and b.retry_in() == 0
    assert [b.allow() for _ in range(5)] == [True, True, True, False, False]


def test_successful_trials_close_it_with_a_fresh_window(clock: Clock) -> None:
    b = breaker(clock)
    open_breaker(b)
    clock.now += 30
    calls(b, successes=2, failures=1)  # 33 % < 50 %
    assert b.state is State.CLOSED
    calls(b, failures=9)  # the failures from before the opening are forgotten
    assert b.state is State.CLOSED


def test_a_failed_trial_reopens_it_and_waits_again(clock: Clock) -> None:
    b = breaker(clock)
    open_breaker(b)
    clock.now += 30
    calls(b, successes=1, failures=2)  # 67 %
    assert b.state is State.OPEN and not b.allow()
    clock.now += 29
    assert b.state is State.OPEN
    clock.now += 1
    assert b.state is State.HALF_OPEN


def test_outcomes_of_calls_started_before_it_opened_change_nothing(clock: Clock) -> None:
    b = breaker(clock)
    open_breaker(b)
    for _ in range(20):
        b.record_success(0.01)
    assert b.state is State.OPEN


def test_slow_calls_do_not_count_unless_configured(clock: Clock) -> None:
    b = breaker(clock)
    calls(b, successes=20, duration=120)
    assert b.state is State.CLOSED


def test_slow_calls_open_it_when_configured(clock: Clock) -> None:
    b = breaker(clock, slow_call_duration=2.0, slow_call_rate=60.0)
    calls(b, successes=5, duration=2.0)  # exactly the limit is not slow
    calls(b, successes=5, duration=2.5)
    assert b.state is State.CLOSED  # 50 % slow
    calls(b, successes=2, duration=2.5)  # 7 of 12 = 58 %
    assert b.state is State.CLOSED
    calls(b, successes=1, duration=2.5)  # 8 of 13 = 62 %
    assert b.state is State.OPEN


def test_slow_trials_reopen_it(clock: Clock) -> None:
    b = breaker(clock, slow_call_duration=1.0, slow_call_rate=50.0)
    calls(b, successes=10, duration=5)
    assert b.state is State.OPEN
    clock.now += 30
    calls(b, successes=2, duration=5)
    calls(b, successes=1, duration=0.1)
    assert b.state is State.OPEN


def test_state_changes_are_reported(clock: Clock) -> None:
    changes: list[tuple[State, State]] = []
    b = breaker(clock, changes)
    open_breaker(b)
    clock.now += 30
    calls(b, failures=3)
    clock.now += 30
    calls(b, successes=3)
    assert changes == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


@pytest.mark.parametrize(
    "config",
    [
        dict(window=0),
        dict(min_calls=0),
        dict(failure_rate=0),
        dict(failure_rate=101),
        dict(wait_open=-1),
        dict(half_open_calls=0),
        dict(slow_call_duration=-1),
    ],
)
def test_a_nonsensical_config_is_refused(config: dict) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**config)


def test_a_released_permit_records_nothing_and_can_be_used_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerConfig(window=2, min_calls=2, wait_open=10, half_open_calls=1), clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure(0.1)
    clock.now += 10
    assert breaker.allow() and not breaker.allow()  # the one trial permit is taken
    breaker.release()  # the call never reached the provider
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow()
