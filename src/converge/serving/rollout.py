"""Which version answers while a rollout runs, and the per-version numbers that end it.

Each predict replica reads the active rollout of a model from the registry (every
``registry_poll_s``, in the background), routes requests, and keeps its own statistics:

- ``canary``: ``percent`` of requests go to the candidate. A request with an ``entity_id`` is
  routed by a hash of it, so one entity always sees the same version (sticky); others at random.
  A candidate that fails a request is counted and the request is answered by production: the
  caller never sees the candidate's fault.
- ``shadow``: production answers every request; the candidate scores the same rows afterwards,
  off the response's path, and the gap between the two answers is recorded.

The candidate is rolled back the moment it crosses a threshold (error rate, median latency
against production's in canary mode, prediction drift against production) and promoted once it has answered
``min_requests`` within all of them. The replica stops routing to it at once and records the
decision in the registry; the first replica to record one wins.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from converge.serving.observability import ROLLOUT_GAP, ROLLOUT_REQUESTS, ROLLOUT_SECONDS

if TYPE_CHECKING:  # the registry's module (and asyncpg) load when a rollout is first read
    from converge.rollouts import Rollout

log = logging.getLogger(__name__)

# Numbers below these counts are too few to judge latency or drift on.
MIN_FOR_LATENCY = 50
MIN_FOR_DRIFT = 100
LATENCY_WINDOW = 256


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    value_sum: float = 0.0
    values: int = 0
    # The latest answers' times: a median over them shrugs off a load's first, cold request.
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def median_seconds(self) -> float:
        return statistics.median(self.recent) if self.recent else 0.0

    def mean_value(self) -> float:
        return self.value_sum / self.values if self.values else 0.0


@dataclass
class Active:
    """One rollout as this replica runs it."""

    rollout: Rollout
    candidate: Tally = field(default_factory=Tally)
    baseline: Tally = field(default_factory=Tally)
    gap_sum: float = 0.0
    gaps: int = 0
    decided: str | None = None

    @property
    def routing(self) -> bool:
        return self.decided is None

    def stats(self) -> dict[str, Any]:
        def view(t: Tally) -> dict[str, Any]:
            return {
                "requests": t.requests, "errors": t.errors,
                "median_ms": round(t.median_seconds() * 1000, 3), "mean_prediction": t.mean_value(),
            }  # fmt: skip

        return {
            "candidate": view(self.candidate),
            "baseline": view(self.baseline),
            "shadow_gap": self.gap_sum / self.gaps if self.gaps else None,
        }


def prediction_value(row: dict[str, Any]) -> float | None:
    """One number per answer to compare versions by: the first class's probability, or the
    regression value."""
    probabilities = row.get("probabilities")
    if probabilities:
        return float(next(iter(probabilities.values())))
    label = row.get("label")
    return float(label) if isinstance(label, int | float) else None


def sticky_share(key: str) -> float:
    """A stable number in [0, 100) for ``key``: the same entity lands on the same side."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100.0


class RolloutRouter:
    def __init__(
        self,
        rollouts: Callable[[], Awaitable[Any]],
        db_breaker: Any,
        *,
        poll_s: float,
        on_promote: Callable[[Rollout], Awaitable[None]] | None = None,
    ) -> None:
        self._rollouts = rollouts
        self.db_breaker = db_breaker
        self.poll_s = poll_s
        self.on_promote = on_promote
        self._entries: dict[str, tuple[float, Active | None]] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._random = random.Random()

    async def current(self, name: str) -> Active | None:
        """The active rollout of ``name`` as last read; reads happen in the background, so a
        slow or frozen registry never holds a request (production answers until the first read)."""
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = (time.monotonic(), None)
            self._read_later(name)
        elif time.monotonic() - entry[0] > self.poll_s:
            self._read_later(name)
        active = entry[1]
        return active if active is not None and active.routing else None

    def _read_later(self, name: str) -> None:
        if name not in self._refreshing:  # one read in flight per model
            self._refreshing.add(name)
            self._spawn(self._refresh(name))

    async def _refresh(self, name: str) -> None:
        try:
            store = await self._rollouts()
            rollout = await self.db_breaker.call(store.active, name)
        except Exception as exc:  # noqa: BLE001 - no registry: keep what we had (or nothing)
            log.warning("rollout of %s not read: %s", name, exc)
            previous = self._entries.get(name)
            self._entries[name] = (time.monotonic(), previous[1] if previous else None)
            return
        finally:
            self._refreshing.discard(name)
        previous = self._entries.get(name)
        kept = previous[1] if previous else None
        if rollout is None:
            active = None
        elif kept is not None and kept.rollout.id == rollout.id:
            active = kept  # same rollout: keep counting
        else:
            active = Active(rollout)
        self._entries[name] = (time.monotonic(), active)

    def to_candidate(self, active: Active, entity_id: str | None) -> bool:
        share = sticky_share(entity_id) if entity_id is not None else self._random.random() * 100
        return share < active.rollout.percent

    # -- statistics and decisions --------------------------------------------------------------
    def record(
        self, active: Active, side: str, seconds: float, predictions: list[dict[str, Any]] | None
    ) -> None:
        """One request answered (``predictions``) or failed (None) by ``side``."""
        tally = active.candidate if side == "candidate" else active.baseline
        rollout = active.rollout
        version = rollout.candidate if side == "candidate" else rollout.baseline
        tally.requests += 1
        if predictions is None:
            tally.errors += 1
        else:
            tally.recent.append(seconds)
            ROLLOUT_SECONDS.labels(model=rollout.name, version=str(version)).observe(seconds)
            for row in predictions:
                value = prediction_value(row)
                if value is not None:
                    tally.value_sum += value
                    tally.values += 1
        outcome = "error" if predictions is None else "ok"
        ROLLOUT_REQUESTS.labels(model=rollout.name, version=str(version), outcome=outcome).inc()
        if side == "candidate":
            self._judge(active)

    def record_gap(self, active: Active, production: list[dict], candidate: list[dict]) -> None:
        """Shadow mode: how far the candidate's answers are from production's, row by row."""
        for mine, theirs in zip(candidate, production, strict=False):
            a, b = prediction_value(mine), prediction_value(theirs)
            if a is not None and b is not None:
                active.gap_sum += abs(a - b) / max(1.0, abs(b))
                active.gaps += 1
        if active.gaps:
            rollout = active.rollout
            ROLLOUT_GAP.labels(model=rollout.name, version=str(rollout.candidate)).set(
                active.gap_sum / active.gaps
            )

    def _judge(self, active: Active) -> None:
        if active.decided is not None:
            return
        t = active.rollout.thresholds
        cand, base = active.candidate, active.baseline
        reason = None
        if cand.errors >= t.min_errors and cand.errors / cand.requests > t.max_error_rate:
            reason = f"error rate {cand.errors}/{cand.requests} above {t.max_error_rate:.2%}"
        elif (
            active.rollout.mode == "canary"  # a shadow scores off the response path: its time
            and len(cand.recent) >= MIN_FOR_LATENCY  # includes waiting behind requests
            and len(base.recent) >= MIN_FOR_LATENCY
            and base.median_seconds() > 0
            and cand.median_seconds() / base.median_seconds() > t.max_latency_ratio
        ):
            ratio = cand.median_seconds() / base.median_seconds()
            reason = f"median latency {ratio:.2f}x production's, above {t.max_latency_ratio}x"
        else:
            drift = self._drift(active)
            if drift is not None and drift > t.max_drift:
                reason = f"prediction drift {drift:.4f} above {t.max_drift}"
        if reason is not None:
            self._decide(active, "rolled_back", reason)
        elif cand.requests - cand.errors >= t.min_requests:
            self._decide(active, "promote", f"{cand.requests} requests within every threshold")

    @staticmethod
    def _drift(active: Active) -> float | None:
        if active.rollout.mode == "shadow":
            return active.gap_sum / active.gaps if active.gaps >= MIN_FOR_DRIFT else None
        cand, base = active.candidate, active.baseline
        if cand.values < MIN_FOR_DRIFT or base.values < MIN_FOR_DRIFT:
            return None
        return abs(cand.mean_value() - base.mean_value()) / max(1.0, abs(base.mean_value()))

    def _decide(self, active: Active, state: str, reason: str) -> None:
        active.decided = state  # this replica stops routing to the candidate now
        rollout = active.rollout
        log.warning(
            "rollout of %s v%s: %s (%s)", rollout.name, rollout.candidate, state, reason,
            extra={"fields": {"model": rollout.name, "version": rollout.candidate, "decision": state}},
        )  # fmt: skip
        self._spawn(self._record_decision(active, state, reason))

    async def _record_decision(self, active: Active, state: str, reason: str) -> None:
        rollout = active.rollout
        try:
            store = await self._rollouts()
            won = await self.db_breaker.call(store.end, rollout.id, state, reason, active.stats())
            if won and state == "promote" and self.on_promote is not None:
                await self.on_promote(rollout)
        except Exception:  # noqa: BLE001 - logged; the next poll or an admin picks it up
            log.exception("rollout decision for %s not recorded", rollout.name)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
