"""CoxPH: the linear predictor ``lp`` of ``CoxPHMojoModel``: the coefficients of the row's levels
and numbers, less the same sum over the training means of the row's stratum, plus the offset.

Rows start with the stratification columns (as level codes); a missing number or a missing level
makes ``lp`` missing. A missing or unseen stratum level reads as level 0, as Java's ``(int) NaN``.
"""

from __future__ import annotations

import struct

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from ._base import NativeScorer

np = numpy_when_used(__name__)


def _matrix(archive, info, name: str) -> list[list[float]]:
    """``readRectangularDoubleArray``: big-endian doubles, row after row."""
    rows, cols = int(info.require(f"{name}_size1")), int(info.require(f"{name}_size2"))
    blob = archive.read_bytes(name)
    if len(blob) != 8 * rows * cols:
        raise CorruptMojoError(f"{name} does not hold {rows}x{cols} doubles", info.source)
    flat = struct.unpack(f">{rows * cols}d", blob)
    return [list(flat[r * cols:(r + 1) * cols]) for r in range(rows)]


class CoxPHScorer(NativeScorer):
    supports_offset = True

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        if info.get("interaction_targets") is not None:
            raise UnsupportedMojoError("CoxPH with interactions", info.source)
        self.coef = [float(v) for v in info.require("coef")]
        self.cats = int(info.require("cats"))
        self.cat_offsets = [int(v) for v in info.require("cat_offsets")]
        self.all_levels = bool(info.get("use_all_factor_levels", False))
        nums = int(info.get("num_numerical_columns", -1))
        if nums == -1:  # older MOJOs: every coefficient after the levels belongs to a number
            base = self.cat_offsets[self.cats]
            self.num_coef = self.coef[base:]
        else:
            offsets = [int(v) for v in info.require("num_offsets")][:nums]
            self.num_coef = []
            for o in offsets:
                if o >= len(self.coef):
                    break
                self.num_coef.append(self.coef[o])
        count = int(info.get("strata_count", 0))
        self.strata = {}
        self.strata_len = 0
        for s in range(count):
            key = tuple(int(v) for v in info.require(f"strata_{s}"))
            self.strata[key] = s
            self.strata_len = len(key)
        self.lp_base = self._lp_base(_matrix(archive, info, "x_mean_cat"),
                                     _matrix(archive, info, "x_mean_num"), max(count, 1))

    def _lp_base(self, mean_cat, mean_num, size: int) -> list[float]:
        """``computeLpBase``: the linear predictor at each stratum's training means."""
        start = len(mean_cat[0]) if mean_cat else 0
        base = []
        for s in range(size):
            total = 0.0
            for i, m in enumerate(mean_cat[s]):
                total += m * self.coef[i]
            for i, m in enumerate(mean_num[s]):
                total += m * self.coef[i + start]
            base.append(total)
        return base

    def output_columns(self) -> list[str]:
        return ["lp"]

    def rows_without_numpy(self) -> bool:
        return True

    def _categories(self, row: list[float]) -> float:
        total = 0.0
        at = self.strata_len
        low = 0 if self.all_levels else 1
        for c in range(self.cats):
            v = row[at + c]
            if v != v:
                if not self.all_levels:
                    total = float("nan")
                    continue
                v = 0.0  # genmodel's (int) NaN
            value = int(v) - low
            x = value + self.cat_offsets[c]
            if value >= 0 and x < self.cat_offsets[c + 1]:
                total += self.coef[x]
        return total

    def _numbers(self, row: list[float]) -> float:
        total = 0.0
        at = self.strata_len + self.cats
        for i, c in enumerate(self.num_coef):
            total += c * row[at + i]
        return total

    def _stratum(self, row: list[float]) -> int:
        if not self.strata:
            return 0
        key = tuple(0 if v != v else int(v) for v in row[:self.strata_len])
        try:
            return self.strata[key]
        except KeyError:
            raise UnsupportedMojoError(f"stratum {key} was not seen in training",
                                       self.info.source) from None

    def score_row(self, row, offset):
        lp = self._categories(row) + self._numbers(row) - self.lp_base[self._stratum(row)]
        return [lp + (offset or 0.0)]

    def score(self, raw, offset):
        n = raw.shape[0]
        at = self.strata_len
        coef = np.asarray(self.coef)
        low = 0 if self.all_levels else 1
        cats = np.zeros(n)
        for c in range(self.cats):
            v = raw[:, at + c]
            missing = np.isnan(v)
            value = np.where(missing, 0.0, v).astype(np.int64) - low
            x = value + self.cat_offsets[c]
            hit = (value >= 0) & (x < self.cat_offsets[c + 1])
            cats = cats + np.where(hit, coef[np.clip(x, 0, len(coef) - 1)], 0.0)
            if not self.all_levels:
                cats[missing] = np.nan
        nums = np.zeros(n)
        for i, c in enumerate(self.num_coef):
            nums = nums + c * raw[:, at + self.cats + i]
        if self.strata:
            base = np.array([self.lp_base[self._stratum(r)] for r in raw[:, :at].tolist()])
        else:
            base = self.lp_base[0]
        lp = cats + nums - base
        if offset is not None:
            lp = lp + offset
        return lp.reshape(n, 1)
