"""TargetEncoder: each encoded column (or interaction of columns) becomes the target mean of the
row's level, blended with the prior mean by the level's row count when the model blends
(``TargetEncoderMojoModel.score0``); classifiers get one column per class but the first.

A missing level takes the NA level's encoding when training saw missing values, else the prior
mean; an interaction of levels never seen together is missing. Noise is a training-time option
and never reaches the MOJO.
"""

from __future__ import annotations

import bisect
import re

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError
from . import _scalar
from ._base import NativeScorer

np = numpy_when_used(__name__)

_DIR = "feature_engineering/target_encoding/"
_SECTION = re.compile(r"\[(.*?)\]")


def _sections(archive, name: str) -> list[tuple[str, list[str]]]:
    """``[name]`` headed blocks of an ini file, in file order."""
    out: list[tuple[str, list[str]]] = []
    if not archive.exists(_DIR + name):
        return out
    for line in archive.read_text(_DIR + name).splitlines():
        line = line.strip()
        match = _SECTION.search(line)
        if match or not out:
            out.append((match.group(1) if match else "", []))
        elif line:
            out[-1][1].append(line)
    return out


def _mappings(archive) -> list[tuple[list[str], str, list[int] | None]]:
    """``input_encoding_columns_map.ini``: (input columns, encoded column, interaction domain)."""
    out = []
    blocks = _sections(archive, "input_encoding_columns_map.ini")
    i = 0
    while i < len(blocks):
        title, lines = blocks[i]
        if title == "from":
            to = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "to" else None
            if to is None:
                raise CorruptMojoError("target encoding map without [to]", archive.source)
            domain = None
            if i + 2 < len(blocks) and blocks[i + 2][0] == "to_domain":
                domain = [int(v) for v in blocks[i + 2][1]]
                i += 1
            out.append((lines, to[0], domain))
            i += 2
        else:
            i += 1
    return out


class _Encoding:
    """One encoded column's numerators and denominators per level (per target class)."""

    def __init__(self, lines: list[str], n_classes: int) -> None:
        self.multiclass = n_classes > 2
        self.num_den: dict[int, dict[int, tuple[float, float]]] = {}
        for line in lines:
            key, _, rest = line.partition("=")
            parts = [float(v) for v in rest.split()]
            target = int(parts[-1]) if self.multiclass else -1
            self.num_den.setdefault(int(key.strip()), {})[target] = (parts[0], parts[1])
        self.na_level = len(self.num_den) - 1
        self.priors: dict[int, float] = {}

    def prior(self, target: int) -> float:
        """``doComputePriorMean``: sums over the levels in ascending order (Java's HashMap)."""
        if target not in self.priors:
            num = den = 0.0
            for level in sorted(self.num_den):
                n, d = self.num_den[level][target]
                num += n
                den += d
            self.priors[target] = num / den
        return self.priors[target]


class TargetEncoderScorer(NativeScorer):
    def __init__(self, info, archive) -> None:
        super().__init__(info)
        g = info.get
        self.blending = bool(g("with_blending", False))
        self.inflection = float(g("inflection_point", 0.0)) if self.blending else 0.0
        self.smoothing = float(g("smoothing", 0.0)) if self.blending else 0.0
        K = self.n_classes
        self.targets = list(range(1, K)) if K > 2 else [-1]
        encodings = {name: _Encoding(lines, K)
                     for name, lines in _sections(archive, "encoding_map.ini") if name}
        has_na = {}
        for _, lines in _sections(archive, "te_column_name_to_missing_values_presence.ini"):
            for line in lines:
                key, _, value = line.partition("=")
                has_na[key.strip()] = int(value.strip()) == 1
        names = list(info.columns)
        self.columns = []
        for inputs, encoded, domain in _mappings(archive):
            if encoded not in encodings:
                raise CorruptMojoError(f"no target encoding for {encoded!r}", info.source)
            idx = [names.index(c) for c in inputs]
            cards = [len(info.domains[i] or []) for i in idx]
            self.columns.append((idx, cards, domain, encodings[encoded],
                                 has_na.get(encoded, False)))
        self.tables = [self._table(enc, has) for _, _, _, enc, has in self.columns]
        self.names = []
        for _, to, _ in self._out_sections(archive):
            self.names += to

    @staticmethod
    def _out_sections(archive):
        blocks = _sections(archive, "input_output_columns_map.ini")
        return [(blocks[i][1], blocks[i + 1][1], None) for i in range(len(blocks) - 1)
                if blocks[i][0] == "from" and blocks[i + 1][0] == "to"]

    def output_columns(self) -> list[str]:
        return list(self.names)

    def rows_without_numpy(self) -> bool:
        return True

    def _value(self, num_den: tuple[float, float], prior: float) -> float:
        num, den = num_den
        posterior = _scalar.div(num, den)
        if not self.blending:
            return posterior
        rows = float(int(den)) if den == den else 0.0
        lam = 1.0 / (1 + _scalar.exp((self.inflection - rows) / self.smoothing))
        return lam * posterior + (1 - lam) * prior

    @staticmethod
    def _category(row, idx, cards, domain) -> float:
        if domain is None:
            return row[idx[0]]
        interaction, multiplier = 0, 1
        for i, card in zip(idx, cards):
            v = row[i]
            level = card if v != v or v >= card else int(v)
            interaction += multiplier * level
            multiplier *= card + 1
        at = bisect.bisect_left(domain, interaction)
        return float(at) if at < len(domain) and domain[at] == interaction else float("nan")

    def _table(self, enc: _Encoding, has_na: bool) -> list[list[float]]:
        """The encoding of every level, then of a missing one (``encodeNA``)."""
        rows = []
        for level in range(max(enc.num_den, default=-1) + 1):
            stats = enc.num_den.get(level)
            rows.append([float("nan")] * len(self.targets) if stats is None else
                        [self._value(stats[t], enc.prior(t)) for t in self.targets])
        rows.append(rows[enc.na_level] if has_na else [enc.prior(t) for t in self.targets])
        return rows

    def score_row(self, row, offset):
        out = []
        for (idx, cards, domain, _, _), table in zip(self.columns, self.tables):
            category = self._category(row, idx, cards, domain)
            level = len(table) - 1 if category != category else int(category)
            if not 0 <= level < len(table) - 1 and category == category:
                raise CorruptMojoError(f"level {level} has no target encoding", self.info.source)
            out += table[level]
        return out

    def score(self, raw, offset):
        parts = []
        for (idx, cards, domain, _, _), table in zip(self.columns, self.tables):
            if domain is None:
                codes = raw[:, idx[0]]
            else:
                codes = np.array([self._category(r, idx, cards, domain) for r in raw.tolist()])
            na = len(table) - 1
            index = np.where(np.isnan(codes), na, np.nan_to_num(codes, nan=na)).astype(np.intp)
            if np.any((index < 0) | (index > na)):
                raise CorruptMojoError("a level has no target encoding", self.info.source)
            parts.append(np.asarray(table, dtype=np.float64)[index])
        return np.hstack(parts) if parts else np.empty((raw.shape[0], 0))
