"""Circuit breaker state machine, driven by a manual clock."""

import pytest

from converge.resilience import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def fail():
    raise ConnectionError("down")


async def ok():
    return "ok"


async def bad_input():
    raise ValueError("not an outage")


async def test_opens_after_threshold_and_fails_fast():
    clock = Clock()
    b = CircuitBreaker("redis", failure_threshold=2, reset_timeout_s=5, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await b.call(fail)
    assert b.state == OPEN
    with pytest.raises(CircuitOpenError):
        await b.call(ok)


async def test_half_open_trial_closes_on_success():
    clock = Clock()
    b = CircuitBreaker("redis", failure_threshold=1, reset_timeout_s=5, clock=clock)
    with pytest.raises(ConnectionError):
        await b.call(fail)
    clock.now = 5.0
    assert b.state == HALF_OPEN
    assert await b.call(ok) == "ok"
    assert b.state == CLOSED


async def test_half_open_failure_reopens():
    clock = Clock()
    b = CircuitBreaker("s3", failure_threshold=3, reset_timeout_s=1, clock=clock)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await b.call(fail)
    clock.now = 1.5
    with pytest.raises(ConnectionError):
        await b.call(fail)
    assert b.state == OPEN
    clock.now = 2.0
    assert b.state == OPEN


async def test_only_one_trial_in_half_open():
    clock = Clock()
    b = CircuitBreaker("pg", failure_threshold=1, reset_timeout_s=1, clock=clock)
    with pytest.raises(ConnectionError):
        await b.call(fail)
    clock.now = 1.0
    assert b.allow() is True
    assert b.allow() is False


async def test_non_outage_errors_do_not_count():
    b = CircuitBreaker("pg", failure_threshold=1)
    with pytest.raises(ValueError):
        await b.call(bad_input)
    assert b.state == CLOSED


async def test_success_resets_the_count():
    b = CircuitBreaker("pg", failure_threshold=2)
    with pytest.raises(ConnectionError):
        await b.call(fail)
    await b.call(ok)
    with pytest.raises(ConnectionError):
        await b.call(fail)
    assert b.state == CLOSED


def slow_failure(clock: Clock, seconds: float, exc: BaseException):
    async def call():
        clock.now += seconds
        raise exc

    return call


async def test_with_slow_s_only_slow_failures_open_the_breaker():
    """A refusal that costs nothing keeps the breaker closed (the first call after the dependency
    is back succeeds); calls that hang for their timeout open it."""
    clock = Clock()
    b = CircuitBreaker("postgres", failure_threshold=2, reset_timeout_s=5, slow_s=0.1, clock=clock)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await b.call(slow_failure(clock, 0.001, ConnectionError("refused")))
    assert b.state == CLOSED
    assert await b.call(ok) == "ok"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await b.call(slow_failure(clock, 0.5, ConnectionError("no answer")))
    assert b.state == OPEN


async def test_a_timeout_counts_as_slow_however_fast_it_is_reported():
    """A failure caused by a timeout (e.g. a translated error raised from it) is a hang."""
    clock = Clock()
    b = CircuitBreaker("postgres", failure_threshold=1, reset_timeout_s=5, slow_s=0.1, clock=clock)
    try:
        raise TimeoutError("no answer within 0.5 s")
    except TimeoutError as cause:
        wrapped = ConnectionError("feature upsert failed")
        wrapped.__cause__ = cause
    with pytest.raises(ConnectionError):
        await b.call(slow_failure(clock, 0.0, wrapped))
    assert b.state == OPEN


async def test_a_fast_failure_in_half_open_lets_calls_through_again():
    """Hung, then dead: the breaker stops failing calls itself, since each costs nothing now."""
    clock = Clock()
    b = CircuitBreaker("redis", failure_threshold=1, reset_timeout_s=1, slow_s=0.1, clock=clock)
    with pytest.raises(TimeoutError):
        await b.call(slow_failure(clock, 0.5, TimeoutError()))
    assert b.state == OPEN
    clock.now += 1.0
    with pytest.raises(ConnectionError):
        await b.call(slow_failure(clock, 0.001, ConnectionError("refused")))
    assert b.state == CLOSED
