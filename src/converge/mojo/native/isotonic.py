"""Isotonic regression (``IsotonicRegressionMojoModel``): the input clipped to the training range,
then the fitted step at that point or the straight line between its two neighbours. genmodel
always clips (whatever ``out_of_bounds`` said in training); a missing input answers missing."""

from __future__ import annotations

import bisect
import math
import struct

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError
from ._base import NativeScorer

np = numpy_when_used(__name__)


def _doubles(blob: bytes, name: str, source: str) -> list[float]:
    """``ModelMojoReader.readblobDoubles``: a big-endian count, then big-endian doubles."""
    if len(blob) < 4:
        raise CorruptMojoError(f"{name} is truncated", source)
    (n,) = struct.unpack(">i", blob[:4])
    if n < 1 or len(blob) != 4 + 8 * n:
        raise CorruptMojoError(f"{name} does not hold {n} doubles", source)
    return list(struct.unpack(f">{n}d", blob[4:]))


class IsotonicCurve:
    """The fitted steps (``calib/thresholds_*``) and the training range: isotonic regression's
    answer, and isotonic calibration's (``IsotonicCalibrator.calibrateP1``)."""

    def __init__(self, info, archive) -> None:
        self.min_x = float(info.get("calib_min_x", math.nan))
        self.max_x = float(info.get("calib_max_x", math.nan))
        self.xs = _doubles(archive.read_bytes("calib/thresholds_x"), "calib/thresholds_x", info.source)
        self.ys = _doubles(archive.read_bytes("calib/thresholds_y"), "calib/thresholds_y", info.source)
        if len(self.xs) != len(self.ys) or any(a >= b for a, b in zip(self.xs, self.xs[1:])):
            raise CorruptMojoError("isotonic thresholds are not increasing pairs", info.source)

    def at(self, x: float) -> float:
        lo_x, hi_x = self.min_x, self.max_x
        if x != x:
            return math.nan
        x = lo_x if x < lo_x else min(x, hi_x)  # IsotonicRegressionUtils.clip
        if x != x or x < lo_x or x > hi_x:
            return math.nan
        xs, ys = self.xs, self.ys
        pos = bisect.bisect_left(xs, x)
        if pos < len(xs) and xs[pos] == x:
            return ys[pos]
        lo, hi = pos - 1, pos
        slope = (ys[hi] - ys[lo]) / (xs[hi] - xs[lo])
        return ys[lo] + slope * (x - xs[lo])

    def batch(self, x: np.ndarray) -> np.ndarray:
        """The same arithmetic as :meth:`at`, for all values at once."""
        xs, ys = np.asarray(self.xs), np.asarray(self.ys)
        x = x.astype(np.float64)
        with np.errstate(invalid="ignore"):
            x = np.where(x < self.min_x, self.min_x, np.minimum(x, self.max_x))
            outside = np.isnan(x) | (x < self.min_x) | (x > self.max_x)
            pos = np.searchsorted(xs, np.where(outside, xs[0], x), side="left")
            at = np.minimum(pos, xs.size - 1)
            exact = xs[at] == x
            lo, hi = np.maximum(pos - 1, 0), at
            slope = (ys[hi] - ys[lo]) / (xs[hi] - xs[lo])
            y = np.where(exact, ys[at], ys[lo] + slope * (x - xs[lo]))
        return np.where(outside, np.nan, y)


class IsotonicScorer(NativeScorer):
    def __init__(self, info, archive) -> None:
        super().__init__(info)
        self.curve = IsotonicCurve(info, archive)

    def rows_without_numpy(self) -> bool:
        return True

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        return [self.curve.at(row[0])]

    def score(self, raw, offset):
        self._check_offset(offset)
        return self.curve.batch(raw[:, 0]).reshape(-1, 1)
