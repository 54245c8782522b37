"""Routing and judging of a rollout on plain numbers (no services)."""

from __future__ import annotations

from datetime import UTC, datetime

from converge.rollouts import Rollout, Thresholds
from converge.serving.rollout import Active, RolloutRouter, sticky_share


def _active(mode="canary", percent=10.0, **limits):
    rollout = Rollout(
        id=1, name="m", candidate=2, baseline=1, mode=mode, percent=percent,
        thresholds=Thresholds(**limits), state="active", created_at=datetime.now(UTC),
    )  # fmt: skip
    return Active(rollout)


class _Router(RolloutRouter):
    def __init__(self):
        super().__init__(rollouts=None, db_breaker=None, poll_s=1.0)
        self.decisions = []

    def _decide(self, active, state, reason):
        active.decided = state
        self.decisions.append((state, reason))


def test_an_entity_always_lands_on_the_same_side_and_the_share_holds():
    router, active = _Router(), _active(percent=10)
    sides = {f"entity-{i}": router.to_candidate(active, f"entity-{i}") for i in range(20_000)}
    assert all(router.to_candidate(active, e) == side for e, side in list(sides.items())[:500])
    assert abs(100 * sum(sides.values()) / len(sides) - 10) < 1
    assert sticky_share("a") == sticky_share("a") and 0 <= sticky_share("b") < 100


def test_errors_roll_back_only_past_the_minimum_count_and_rate():
    router, active = _Router(), _active(min_errors=3, max_error_rate=0.02)
    for _ in range(2):
        router.record(active, "candidate", 0.0, None)
    assert active.decided is None
    router.record(active, "candidate", 0.0, None)
    assert router.decisions[0][0] == "rolled_back" and "error rate 3/3" in router.decisions[0][1]


def test_a_slow_canary_is_rolled_back_on_median_latency():
    router, active = _Router(), _active(max_latency_ratio=3.0, min_requests=10_000)
    for _ in range(60):
        router.record(active, "baseline", 0.001, [{"label": 1.0}])
    for _ in range(60):
        router.record(active, "candidate", 0.004, [{"label": 1.0}])
    assert router.decisions and "median latency 4.00x" in router.decisions[0][1]


def test_drift_against_production_rolls_back_and_a_good_canary_is_promoted():
    router, drifting = _Router(), _active(max_drift=0.1, min_requests=10_000)
    for _ in range(100):
        router.record(drifting, "baseline", 0.001, [{"label": "yes", "probabilities": {"yes": 0.2, "no": 0.8}}])
    for _ in range(100):
        router.record(drifting, "candidate", 0.001, [{"label": "no", "probabilities": {"yes": 0.5, "no": 0.5}}])
    assert router.decisions[-1][0] == "rolled_back" and "drift 0.3000" in router.decisions[-1][1]

    good = _active(min_requests=150)
    for _ in range(150):
        router.record(good, "baseline", 0.001, [{"label": 3.0}])
        router.record(good, "candidate", 0.001, [{"label": 3.01}])
    assert router.decisions[-1][0] == "promote"
