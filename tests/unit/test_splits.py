"""Walk-forward plans: calendar boundaries, windows, embargo, and the leakage check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from converge.training.splits import (
    EmptySplitError,
    LeakageError,
    Split,
    SplitError,
    check_plan,
    check_split,
    to_ms,
    walk_forward,
)


def _daily(start: datetime, days: int, per_day: int = 3) -> np.ndarray:
    return np.array(
        [to_ms(start + timedelta(days=d, hours=h)) for d in range(days) for h in range(per_day)],
        dtype=np.int64,
    )


JAN = datetime(2025, 1, 1, tzinfo=UTC)
TIMES = _daily(JAN, 212)  # 2025-01-01 .. 2025-07-31


def test_monthly_expanding_is_jan_feb_then_jan_mar():
    splits = walk_forward(TIMES, n_splits=6)
    assert [s.name for s in splits] == [
        "2025-02",
        "2025-03",
        "2025-04",
        "2025-05",
        "2025-06",
        "2025-07",
    ]
    assert all(s.train_start_ms is None for s in splits)
    assert splits[0].train_end_ms == to_ms(datetime(2025, 2, 1, tzinfo=UTC))
    assert splits[0].test_end_ms == to_ms(datetime(2025, 3, 1, tzinfo=UTC))
    check_plan(splits, TIMES)
    sizes = [int(s.masks(TIMES)[0].sum()) for s in splits]
    assert sizes == sorted(sizes) and len(set(sizes)) == 6  # the window expands


def test_sliding_window_keeps_the_last_periods():
    splits = walk_forward(TIMES, n_splits=3, window="sliding", train_periods=2)
    for s in splits:
        train, _ = check_split(s, TIMES)
        days = {datetime.fromtimestamp(t / 1000, tz=UTC).month for t in TIMES[train]}
        assert len(days) == 2


def test_gap_leaves_an_embargo_between_train_and_test():
    splits = walk_forward(TIMES, n_splits=2, gap_periods=1)
    for s in splits:
        train, test = check_split(s, TIMES)
        assert TIMES[test].min() - TIMES[train].max() > timedelta(days=27).total_seconds() * 1000


def test_weekly_periods_start_on_monday():
    splits = walk_forward(TIMES, n_splits=4, period="week")
    for s in splits:
        assert datetime.fromtimestamp(s.test_start_ms / 1000, tz=UTC).weekday() == 0
    check_plan(splits, TIMES)


def test_cut_off_ends_the_last_test_period():
    cut = datetime(2025, 7, 15, tzinfo=UTC)
    splits = walk_forward(TIMES, n_splits=2, cut_off=cut)
    assert splits[-1].test_end_ms == to_ms(cut)
    assert splits[-1].name == "2025-07"


def test_too_many_splits_is_refused_with_the_limit():
    with pytest.raises(SplitError, match="at most 6 split"):
        walk_forward(TIMES, n_splits=7)


def test_leaking_split_is_named():
    leaky = Split(
        0,
        "leaky-march",
        None,
        to_ms("2025-03-15T00:00:00Z"),
        to_ms("2025-03-01T00:00:00Z"),
        to_ms("2025-04-01T00:00:00Z"),
    )
    with pytest.raises(LeakageError, match="leaky-march") as info:
        check_plan([*walk_forward(TIMES, n_splits=2), leaky], TIMES)
    assert info.value.split == "leaky-march"
    assert info.value.max_train_ms >= info.value.min_test_ms


def test_empty_split_is_refused():
    future = Split(
        0,
        "2030-01",
        None,
        to_ms("2030-01-01T00:00:00Z"),
        to_ms("2030-01-01T00:00:00Z"),
        to_ms("2030-02-01T00:00:00Z"),
    )
    with pytest.raises(EmptySplitError, match="2030-01"):
        check_split(future, TIMES)
    with pytest.raises(EmptySplitError):
        walk_forward(np.array([], dtype=np.int64), n_splits=1)


def test_plan_round_trips_through_dicts():
    for s in walk_forward(TIMES, n_splits=3, window="sliding", train_periods=1):
        assert Split.from_dict(s.to_dict()) == s
    iso = {
        "name": "x",
        "train_end": "2025-02-01T00:00:00Z",
        "test_start": "2025-02-01T00:00:00Z",
        "test_end": "2025-03-01T00:00:00Z",
    }
    assert Split.from_dict(iso).train_end_ms == to_ms(JAN + timedelta(days=31))


@pytest.mark.parametrize("seed", range(20))
def test_random_data_never_leaks(seed):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(to_ms(JAN), to_ms(JAN + timedelta(days=300)), size=500))
    for window, train_periods in (("expanding", None), ("sliding", 2)):
        splits = walk_forward(
            times, n_splits=4, window=window, train_periods=train_periods, gap_periods=int(seed % 2)
        )
        for s in splits:
            train, test = s.masks(times)
            if train.any() and test.any():
                assert times[train].max() < times[test].min()
