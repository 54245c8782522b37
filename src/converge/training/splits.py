"""Walk-forward splits by calendar period, and the leakage check every split must pass.

A model evaluated on data older than what it trained on looks better than it is. Each split here
trains on whole calendar periods strictly before its test period (expanding by default, or a
sliding window), optionally leaves an embargo gap between them, and is checked against the rows
it actually selects: ``max(train_time) < min(test_time)`` or a :class:`LeakageError` naming it.
Times are epoch milliseconds (UTC), as they reach H2O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from converge.errors import InvalidInput

Period = Literal["month", "week", "day"]
Window = Literal["expanding", "sliding"]


class SplitError(InvalidInput):
    """A split plan that cannot be trained honestly."""


class LeakageError(SplitError):
    """A split whose training rows are not all older than its test rows."""

    def __init__(self, split: str, max_train_ms: int, min_test_ms: int) -> None:
        self.split = split
        self.max_train_ms = max_train_ms
        self.min_test_ms = min_test_ms
        super().__init__(
            f"split {split!r} leaks: max(train_time)={_iso(max_train_ms)} is not before "
            f"min(test_time)={_iso(min_test_ms)}"
        )


class EmptySplitError(SplitError):
    """A split with no training rows or no test rows."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def to_ms(value: datetime | str | float) -> int:
    """Epoch milliseconds from a datetime (naive means UTC), an ISO string or a number."""
    if isinstance(value, int | float | np.integer | np.floating):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


@dataclass(frozen=True)
class Split:
    """One walk-forward step: train on ``[train_start, train_end)``, test on ``[test_start, test_end)``."""

    index: int
    name: str
    train_start_ms: int | None
    train_end_ms: int
    test_start_ms: int
    test_end_ms: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["train_start"] = None if self.train_start_ms is None else _iso(self.train_start_ms)
        out["train_end"] = _iso(self.train_end_ms)
        out["test_start"] = _iso(self.test_start_ms)
        out["test_end"] = _iso(self.test_end_ms)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        def pick(key: str) -> int | None:
            if data.get(f"{key}_ms") is not None:
                return int(data[f"{key}_ms"])
            return None if data.get(key) is None else to_ms(data[key])

        test_start, test_end, train_end = pick("test_start"), pick("test_end"), pick("train_end")
        if test_start is None or test_end is None or train_end is None:
            raise SplitError(f"split {data.get('name')!r}: train_end, test_start, test_end needed")
        return cls(
            index=int(data.get("index", 0)),
            name=str(data.get("name") or f"split-{data.get('index', 0)}"),
            train_start_ms=pick("train_start"),
            train_end_ms=train_end,
            test_start_ms=test_start,
            test_end_ms=test_end,
        )

    def masks(self, times_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boolean row masks (train, test) over an array of epoch-ms times."""
        t = np.asarray(times_ms, dtype=np.int64)
        train = t < self.train_end_ms
        if self.train_start_ms is not None:
            train &= t >= self.train_start_ms
        test = (t >= self.test_start_ms) & (t < self.test_end_ms)
        return train, test


def period_start(moment: datetime, period: Period) -> datetime:
    """The start (UTC midnight) of the calendar period containing ``moment``."""
    moment = moment.astimezone(UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise SplitError(f"period must be month, week or day, got {period!r}")


def add_periods(start: datetime, n: int, period: Period) -> datetime:
    if period == "day":
        return start + timedelta(days=n)
    if period == "week":
        return start + timedelta(weeks=n)
    months = start.year * 12 + (start.month - 1) + n
    return start.replace(year=months // 12, month=months % 12 + 1)


def _label(start: datetime, period: Period) -> str:
    if period == "month":
        return start.strftime("%Y-%m")
    if period == "week":
        return start.strftime("%G-W%V")
    return start.strftime("%Y-%m-%d")


def walk_forward(
    times_ms: Iterable[int] | np.ndarray,
    *,
    n_splits: int,
    period: Period = "month",
    window: Window = "expanding",
    train_periods: int | None = None,
    gap_periods: int = 0,
    cut_off: datetime | None = None,
) -> list[Split]:
    """Plan ``n_splits`` walk-forward splits whose test periods are the last calendar periods.

    Expanding windows train on everything before the test period (minus the gap); sliding windows
    keep the last ``train_periods``. ``cut_off`` (exclusive) ends the last test period early.
    """
    t = np.asarray(list(times_ms) if not isinstance(times_ms, np.ndarray) else times_ms)
    if n_splits < 1:
        raise SplitError(f"n_splits must be >= 1, got {n_splits}")
    if gap_periods < 0:
        raise SplitError(f"gap_periods must be >= 0, got {gap_periods}")
    if window == "sliding" and (train_periods is None or train_periods < 1):
        raise SplitError("a sliding window needs train_periods >= 1")
    if window not in ("expanding", "sliding"):
        raise SplitError(f"window must be expanding or sliding, got {window!r}")
    if t.size == 0:
        raise EmptySplitError("no rows to split: the training set is empty")
    t = t.astype(np.int64)
    first = period_start(datetime.fromtimestamp(int(t.min()) / 1000, tz=UTC), period)
    last_ms = int(t.max()) + 1
    if cut_off is not None:
        last_ms = min(last_ms, to_ms(cut_off))
    end = datetime.fromtimestamp(last_ms / 1000, tz=UTC)
    starts = [first]
    while add_periods(starts[-1], 1, period) < end:
        starts.append(add_periods(starts[-1], 1, period))
    available = len(starts) - 1 - gap_periods
    if available < n_splits:
        raise SplitError(
            f"{len(starts)} {period}(s) of data allow at most {max(available, 0)} split(s) with "
            f"gap {gap_periods}; asked for {n_splits}"
        )
    splits = []
    for i, test_idx in enumerate(range(len(starts) - n_splits, len(starts))):
        test_start = starts[test_idx]
        test_end = add_periods(test_start, 1, period)
        if test_idx == len(starts) - 1:
            test_end = min(test_end, end)
        train_end = starts[test_idx - gap_periods]
        train_start = None
        if window == "sliding":
            assert train_periods is not None
            train_start = starts[max(0, test_idx - gap_periods - train_periods)]
        splits.append(
            Split(
                index=i,
                name=_label(test_start, period),
                train_start_ms=None if train_start is None else to_ms(train_start),
                train_end_ms=to_ms(train_end),
                test_start_ms=to_ms(test_start),
                test_end_ms=to_ms(test_end),
            )
        )
    return splits


def check_split(split: Split, times_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Select a split's rows and prove it honest: non-empty, and all train rows before all test rows."""
    train, test = split.masks(times_ms)
    n_train, n_test = int(train.sum()), int(test.sum())
    if n_train == 0 or n_test == 0:
        raise EmptySplitError(
            f"split {split.name!r} is empty: {n_train} training row(s), {n_test} test row(s)"
        )
    t = np.asarray(times_ms, dtype=np.int64)
    max_train, min_test = int(t[train].max()), int(t[test].min())
    if not max_train < min_test:
        raise LeakageError(split.name, max_train, min_test)
    return train, test


def check_plan(splits: Sequence[Split], times_ms: np.ndarray) -> None:
    """Check every split of a plan against the data before any training starts."""
    if not splits:
        raise EmptySplitError("the split plan is empty")
    names = [s.name for s in splits]
    if len(set(names)) != len(names):
        raise SplitError(f"split names must be unique: {names}")
    for split in splits:
        check_split(split, times_ms)
