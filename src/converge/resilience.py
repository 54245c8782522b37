"""Circuit breakers: a dead dependency fails fast instead of stalling every request.

Each dependency (Redis, Postgres, S3) gets its own breaker. After ``failure_threshold`` consecutive
failures the breaker opens and calls fail at once with :class:`CircuitOpenError`; after
``reset_timeout_s`` one trial call is let through (half-open) and its outcome closes or re-opens it.
Only the exception types listed as ``failures`` count: a bad request is not an outage. With
``slow_s`` set, only slow failures count (a timeout, or a call that took at least ``slow_s``): a
dependency that refuses at once costs the caller nothing, and counting it would keep the breaker
open, failing requests, after the dependency is back. What the breaker protects against is the
hung dependency, which would otherwise hold every request for a whole timeout.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitOpenError(ConnectionError):
    """Raised instead of calling a dependency whose breaker is open."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is unavailable (circuit open)")
        self.name = name


class CircuitBreaker:
    """Consecutive-failure breaker with a half-open trial; not thread-safe (one event loop)."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        reset_timeout_s: float = 5.0,
        failures: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError),
        slow_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.failures = failures
        self.slow_s = slow_s
        self._clock = clock
        self._state = CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
            return HALF_OPEN
        return self._state

    def available(self) -> bool:
        """Whether a call would be let through now (without taking the half-open trial)."""
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self._trial_in_flight)

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open only one trial at a time."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._state = CLOSED
        self._consecutive = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._consecutive += 1
        if self._state != CLOSED or self._consecutive >= self.failure_threshold:
            self._state = OPEN
            self._opened_at = self._clock()

    def record_fast_failure(self) -> None:
        """A failure that cost nothing (refused at once): the dependency is down, not hung, so
        calls may keep trying; the first one after it is back succeeds."""
        self._state = CLOSED
        self._consecutive = 0
        self._trial_in_flight = False

    async def call(self, fn: Callable[..., Awaitable[T]], *args: object, **kwargs: object) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker."""
        if not self.allow():
            raise CircuitOpenError(self.name)
        started = self._clock()
        try:
            result = await fn(*args, **kwargs)
        except self.failures as exc:
            slow = caused_by_timeout(exc) or self._clock() - started >= (self.slow_s or 0.0)
            if self.slow_s is None or slow:
                self.record_failure()
            else:
                self.record_fast_failure()
            raise
        except BaseException:
            # Not an outage (bad input, cancellation): release a half-open trial without judging.
            self._trial_in_flight = False
            raise
        self.record_success()
        return result

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state})"


def caused_by_timeout(exc: BaseException | None) -> bool:
    """A timeout, here or as the cause of a translated error (a hang, not a refusal)."""
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
