"""CoxPH: the linear predictor ``lp`` of ``CoxPHMojoModel``: the coefficients of the row's levels
and numbers, less the same sum over the training means of the row's stratum, plus the offset.

Rows start with the stratification columns (as level codes); a missing number or a missing level
makes ``lp`` missing. A missing or unseen stratum level reads as level 0, as Java's ``(int) NaN``.
Interaction columns a row leaves missing are filled as genmodel fills them (levels joined by
``_``, products of numbers, a number per level), then scored like the others.
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


def _java_int(v: float) -> int:
    """Java's ``(int)`` of a double: NaN is 0."""
    return 0 if v != v else int(v)


class CoxPHScorer(NativeScorer):
    supports_offset = True

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        self.coef = [float(v) for v in info.require("coef")]
        self.cats = int(info.require("cats"))
        self.cat_offsets = [int(v) for v in info.require("cat_offsets")]
        self.all_levels = bool(info.get("use_all_factor_levels", False))
        nums = int(info.get("num_numerical_columns", -1))
        self.n_nums = max(nums, 0)
        self.num_offsets = [int(v) for v in info.get("num_offsets") or []]
        self.interactions = self._interactions(info) if nums != -1 else []
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

    def _interactions(self, info) -> list[tuple[int, int, int, str, list | None]]:
        """(target, first, second, kind, the target's levels) per interaction column."""
        targets = info.get("interaction_targets")
        if targets is None:
            return []
        firsts, seconds = info.require("interactions_1"), info.require("interactions_2")
        out = []
        for t, a, b in zip(targets, firsts, seconds):
            t, a, b = int(t), int(a), int(b)
            enums = (info.domains[a] is not None, info.domains[b] is not None)
            kind = "enum_enum" if all(enums) else "num_num" if not any(enums) else \
                "enum_num" if enums[0] else "num_enum"
            out.append((t, a, b, kind, info.domains[t]))
        return out

    def _interact(self, row: list[float]) -> list[int] | None:
        """``evaluateInteractions``: fill the interaction columns a row leaves missing; the
        coefficient index of each enum-by-number interaction (-1 elsewhere)."""
        if not self.interactions:
            return None
        domains = self.info.domains
        at = [-1] * self.n_nums
        for target, a, b, kind, levels in self.interactions:
            if row[target] == row[target]:
                continue
            if kind == "enum_enum":  # Java's (int) NaN reads a missing level as level 0
                name = (domains[a][_java_int(row[a])] + "_" + domains[b][_java_int(row[b])])
                row[target] = float(levels.index(name)) if name in levels else -1.0
            elif kind == "num_num":
                row[target] = row[a] * row[b]
            else:
                enum, num = (a, b) if kind == "enum_num" else (b, a)
                level = _java_int(row[enum]) - (0 if self.all_levels else 1)
                row[target] = 0.0 if level < 0 else row[num]
                at[target - self.cats] = level + self.num_offsets[target - self.cats]
        return at

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
        targets = {t for t, *_ in self.interactions}
        for c in range(self.cats):
            v = row[at + c]
            if v != v:
                if not self.all_levels:
                    total = float("nan")
                    continue
                v = 0.0  # genmodel's (int) NaN
            elif not self.all_levels and v < 0:
                continue
            # interaction levels count from 0 even without all factor levels
            low = 0 if self.all_levels or c in targets else 1
            value = int(v) - low
            x = value + self.cat_offsets[c]
            if value >= 0 and x < self.cat_offsets[c + 1]:
                total += self.coef[x]
        return total

    def _numbers(self, row: list[float], enum_at: list[int] | None) -> float:
        """``forOtherColumns``; an enum-by-number interaction takes its level's coefficient."""
        total = 0.0
        at = self.strata_len + self.cats
        if enum_at is None:
            for i, c in enumerate(self.num_coef):
                total += c * row[at + i]
            return total
        for i in range(self.n_nums):
            k = self.num_offsets[i] if enum_at[i] < 0 else enum_at[i]
            if k >= len(self.coef):
                break
            total += self.coef[k] * row[at + i]
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
        row = list(row)  # interactions are written into the row, as genmodel does
        enum_at = self._interact(row)
        lp = self._categories(row) + self._numbers(row, enum_at) - self.lp_base[self._stratum(row)]
        return [lp + (offset or 0.0)]

    def score(self, raw, offset):
        if self.interactions:
            offsets = [0.0] * raw.shape[0] if offset is None else offset.tolist()
            return np.array([self.score_row(r, o) for r, o in zip(raw.tolist(), offsets)],
                            dtype=np.float64).reshape(raw.shape[0], 1)
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
