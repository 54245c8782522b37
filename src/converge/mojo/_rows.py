"""Turn user rows (dicts or columns) into genmodel's raw ``double[]`` rows.

Semantics follow ``EasyPredictModelWrapper`` as ``PredictCsv`` configures it: columns are matched
by name (unknown names ignored, absent ones missing), numeric strings are parsed like
``Double.parseDouble``, categorical values are looked up exactly (then as ``"column.value"``) and
unseen levels become missing. A numeric string that does not parse becomes missing by default
(``invalid_numbers="na"``; PredictCsv does that only with ``--setConvertInvalidNumbersToNa`` and
otherwise fails, which ``invalid_numbers="raise"`` reproduces). Python conveniences on top,
identical for every backend: ``None``/NaN are missing, ``int`` works where Java wants a ``Double``
(and, for a categorical column, is looked up as its decimal string, as is an integral float),
date-times become epoch milliseconds (naive ones taken as UTC), booleans and other types are
refused with :class:`InvalidInputError`.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from functools import cached_property

from ._javafloat import parse_java_double
from ._numpy import numpy_if_loaded, numpy_when_used
from .errors import InvalidInputError
from .native import _compiled

np = numpy_when_used(__name__)
MISSING = None  # normalised "no value" marker
_NUMBER_TYPES = {float, int, type(None)}
_STR_TYPES = {str, type(None)}

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _is_na_scalar(v) -> bool:
    t = type(v).__name__
    return t in ("NAType", "NaTType")


def _is_bool(v) -> bool:
    npm = numpy_if_loaded()
    return isinstance(v, bool) or (npm is not None and isinstance(v, npm.bool_))


def _is_datetime64(v) -> bool:
    npm = numpy_if_loaded()
    return npm is not None and isinstance(v, npm.datetime64)


def epoch_millis(v) -> float:
    """Date-times as H2O stores them: milliseconds since the epoch (naive values taken as UTC)."""
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.UTC)
        d = v - _EPOCH
        return float((d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000)
    if isinstance(v, _dt.date):
        return float((v - _dt.date(1970, 1, 1)).days * 86400000)
    if _is_datetime64(v):
        if np.isnat(v):
            return math.nan
        return float(v.astype("datetime64[ms]").astype(np.int64))
    raise TypeError(v)


class RowSchema:
    """The model's input side: feature names, domains, offset column, and conversion options."""

    def __init__(
        self,
        columns: list[str],
        domains: list[list[str] | None],
        n_features: int,
        offset_column: str | None,
        source: str,
        unknown_levels: str = "na",
        invalid_numbers: str = "na",
    ) -> None:
        if unknown_levels not in ("na", "raise") or invalid_numbers not in ("na", "raise"):
            raise ValueError("unknown_levels / invalid_numbers must be 'na' or 'raise'")
        self.source = source
        self.n_features = n_features
        self.feature_names = list(columns[:n_features])
        self.domains = list(domains[:n_features])
        self.index = {}
        for i, name in enumerate(columns):  # HashMap.put in order: the last duplicate wins
            self.index[name] = i
        self.index = {k: i for k, i in self.index.items() if i < n_features}
        self.levels = [
            None if d is None else {lv: j for j, lv in enumerate(d)} for d in self.domains
        ]
        self.offset_column = offset_column
        self.unknown_levels = unknown_levels
        self.invalid_numbers = invalid_numbers

    @cached_property
    def _level_counts(self):
        """Per column, the number of levels, -1 for numeric (the compiled code check reads it)."""
        return np.array([-1 if d is None else len(d) for d in self.domains], dtype=np.int64)

    # -- normalisation shared by all backends ---------------------------------------------------
    def normalize(self, name: str, idx: int, v):
        """Return None (missing), a float, or a str, as genmodel would receive it."""
        if v is None or _is_na_scalar(v):
            return None
        is_cat = self.domains[idx] is not None
        if isinstance(v, str):
            return v
        if _is_bool(v):
            raise InvalidInputError(f"column {name!r}: boolean {v!r} is not a valid value", self.source)
        if isinstance(v, numbers.Integral):
            return str(int(v)) if is_cat else float(v)
        if isinstance(v, numbers.Real):
            f = float(v)
            if math.isnan(f):
                return None
            if is_cat:
                if f.is_integer():
                    return str(int(f))
                raise InvalidInputError(
                    f"column {name!r} is categorical; got the number {v!r}", self.source
                )
            return f
        if isinstance(v, _dt.date) or _is_datetime64(v):
            if is_cat:
                raise InvalidInputError(f"column {name!r} is categorical; got {v!r}", self.source)
            f = epoch_millis(v)
            return None if math.isnan(f) else f
        raise InvalidInputError(
            f"column {name!r}: unsupported value type {type(v).__name__}", self.source
        )

    # -- native encoding -------------------------------------------------------------------------
    def encode_value(self, name: str, idx: int, v) -> float:
        t = type(v)  # fast paths for the JSON types; everything else goes through normalize()
        levels = self.levels[idx]
        if t is float and levels is None:
            return v
        if t is str and levels is not None:
            j = levels.get(v)
            if j is not None:
                return float(j)
        elif t is int and levels is None:
            return float(v)
        v = self.normalize(name, idx, v)
        if v is None:
            return math.nan
        if levels is None:
            if isinstance(v, str):
                try:
                    return parse_java_double(v)
                except ValueError:
                    if self.invalid_numbers == "raise":
                        raise InvalidInputError(
                            f"column {name!r}: cannot parse {v!r} as a number", self.source
                        ) from None
                    return math.nan
            return v
        if isinstance(v, str):
            j = levels.get(v)
            if j is None:
                j = self.retry_level(name, idx, v)
            if j is None:
                if self.unknown_levels == "raise":
                    raise InvalidInputError(f"column {name!r}: unknown level {v!r}", self.source)
                return self.unseen_level(idx)
            return float(j)
        raise InvalidInputError(f"column {name!r} is categorical; got {v!r}", self.source)

    def retry_level(self, name: str, idx: int, v: str):
        """The code of a level the first lookup missed (``EnumEncoder`` tries "column.value")."""
        return self.levels[idx].get(f"{name}.{v}")

    def unseen_level(self, idx: int) -> float:
        """An unseen level's code when ``unknown_levels="na"``: missing."""
        return math.nan

    def offset_value(self, v) -> float:
        if v is None or _is_na_scalar(v):
            return 0.0
        if isinstance(v, str):
            try:
                return parse_java_double(v)
            except ValueError:
                raise InvalidInputError(f"offset {v!r} is not a number", self.source) from None
        if _is_bool(v) or not isinstance(v, numbers.Real):
            raise InvalidInputError(f"offset {v!r} is not a number", self.source)
        return float(v)

    def encode_records(self, records) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows as dicts -> (raw matrix, offsets or None): JSON-typed records in one compiled
        pass, the rest by the full rules."""
        n = len(records)
        kernels = _compiled.kernels
        if kernels is None or type(records) is not list:
            return self._encode_columnwise(records)
        raw = np.empty((n, self.n_features))
        left = kernels.encode_records(records, self.index, self.levels, self.n_features, raw)
        for r in left:
            self._check_mapping(r, records[r])
        for r in left:
            raw[r] = self._encode_row(records[r])
        return raw, self._record_offsets(records)

    def _check_mapping(self, r: int, rec) -> None:
        if not isinstance(rec, dict):
            raise InvalidInputError(f"row {r} is a {type(rec).__name__}, not a mapping", self.source)

    def _record_offsets(self, records) -> np.ndarray | None:
        off_col = self.offset_column
        if off_col is None:
            return None
        vals = [rec.get(off_col) for rec in records]
        if all(v is None for v in vals):
            return None
        return np.array([self.offset_value(v) for v in vals], dtype=np.float64)

    def _encode_columnwise(self, records) -> tuple[np.ndarray, np.ndarray | None]:
        """``encode_records`` without the compiled kernels: column by column."""
        n = len(records)
        for r, rec in enumerate(records):
            self._check_mapping(r, rec)
        if n <= 4:
            return self._encode_rowwise(records)
        raw = np.empty((n, self.n_features))
        for name, i in self.index.items():
            raw[:, i] = self._encode_list(name, i, [rec.get(name) for rec in records])
        return raw, self._record_offsets(records)

    def encode_row(self, rec) -> tuple[list[float], float | None]:
        """One dict row -> (raw row, its offset or None), in plain Python (the one-row path)."""
        kernels = _compiled.kernels
        row = None if kernels is None else kernels.encode_record(rec, self.index, self.levels,
                                                                 self.n_features)
        if row is None:
            row = self._encode_row(rec)
        off_col = self.offset_column
        if off_col is not None and rec.get(off_col) is not None:
            return row, self.offset_value(rec[off_col])
        return row, None

    def _encode_row(self, rec) -> list[float]:
        """``encode_row``'s values by the full rules (the compiled fast path takes JSON types)."""
        self._check_mapping(0, rec)
        row = [math.nan] * self.n_features
        index = self.index
        for name, v in rec.items():
            i = index.get(name)
            if i is not None:
                row[i] = self.encode_value(name, i, v)
        return row

    def _encode_rowwise(self, records) -> tuple[np.ndarray, np.ndarray | None]:
        """A few rows: one pass over each dict's items (cheaper than per-column set-up)."""
        rows = [self.encode_row(rec) for rec in records]
        raw = np.array([r for r, _ in rows], dtype=np.float64).reshape(len(rows), self.n_features)
        offsets = [o for _, o in rows]
        if all(o is None for o in offsets):
            return raw, None
        return raw, np.array([0.0 if o is None else o for o in offsets], dtype=np.float64)

    def _encode_list(self, name: str, i: int, col: list) -> np.ndarray:
        """One column of Python values; JSON-typed columns take a vectorised path."""
        types = set(map(type, col))
        levels = self.levels[i]
        if levels is None:
            if types <= _NUMBER_TYPES:
                return np.array(col, dtype=np.float64)  # None -> NaN
        elif types <= _STR_TYPES:
            get = levels.get
            codes = [get(v) for v in col]
            out = np.array(codes, dtype=np.float64)  # None (missing or unseen) -> NaN
            for r in np.flatnonzero(np.isnan(out)).tolist():
                if col[r] is not None:  # unseen: "column.value" retry and the unknown-level policy
                    out[r] = self.encode_value(name, i, col[r])
            return out
        return np.array([self.encode_value(name, i, v) for v in col], dtype=np.float64)

    def encode_columns(self, cols: dict, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Columns (name -> 1-D array/list) -> (raw matrix, offsets or None); fast for numbers."""
        raw = np.full((n, self.n_features), np.nan)
        for name, values in cols.items():
            i = self.index.get(name)
            if i is None:
                continue
            raw[:, i] = self._encode_column(name, i, values, n)
        offsets = None
        if self.offset_column is not None and self.offset_column in cols:
            vals = cols[self.offset_column]
            arr = np.asarray(vals)
            if arr.dtype.kind in "fiu":
                offsets = np.where(np.isnan(arr.astype(np.float64)), 0.0, arr.astype(np.float64))
            else:
                offsets = np.array([self.offset_value(v) for v in arr.tolist()], dtype=np.float64)
        return raw, offsets

    def _encode_column(self, name, i, values, n) -> np.ndarray:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if len(arr) != n:
            raise InvalidInputError(f"column {name!r} has {len(arr)} values, expected {n}", self.source)
        kind = arr.dtype.kind
        if self.levels[i] is None:
            if kind in "fiu":
                return arr.astype(np.float64)
            if kind == "M":
                out = arr.astype("datetime64[ms]").astype(np.int64).astype(np.float64)
                out[np.isnat(arr)] = np.nan
                return out
        cache: dict = {}
        out = np.empty(n)
        for r, v in enumerate(arr.tolist() if kind != "M" else list(arr)):
            try:
                key = (type(v), v)
                hit = cache.get(key)
            except TypeError:
                key, hit = None, None
            if hit is None:
                hit = self.encode_value(name, i, v)
                if key is not None:
                    cache[key] = hit
            out[r] = hit
        return out

    def _first_bad_code(self, X: np.ndarray) -> int:
        kernels = _compiled.kernels
        if kernels is not None:
            X = np.ascontiguousarray(X)
            return kernels.first_bad_code(X, X.shape[0], X.shape[1], self._level_counts)
        for i, d in enumerate(self.domains):
            if d is not None:
                c = X[:, i]
                if not (np.isnan(c) | ((c >= 0) & (c < len(d)) & (c == np.trunc(c)))).all():
                    return i
        return -1

    def check_codes(self, X: np.ndarray) -> np.ndarray:
        """Validate a pre-encoded matrix for ``predict_numpy``: codes must be in-domain or NaN."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InvalidInputError(
                f"expected a 2-D array with {self.n_features} columns in feature_names order, "
                f"got shape {X.shape}",
                self.source,
            )
        bad = self._first_bad_code(X)
        if bad >= 0:
            raise InvalidInputError(
                f"column {self.feature_names[bad]!r}: categorical codes must be integers in "
                f"[0, {len(self.domains[bad])}) or NaN",
                self.source,
            )
        return X
