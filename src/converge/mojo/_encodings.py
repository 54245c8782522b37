"""Models trained on encoded categoricals (H2O's ``categorical_encoding``): the MOJO's columns are
the encoded ones (``c1:0``, ``c1.a``...), and genmodel's ``EasyPredictModelWrapper`` turns each
original column into them before ``score0`` (``hex.genmodel.easy.*Encoder``). The same happens
here, in front of the native scorer, which then sees plain numeric columns.

Slots start as NaN, as genmodel's ``nanArray``: a categorical left out of the row (PredictCsv's
empty cell) leaves every slot missing, while an unseen level is encoded as genmodel's NA level.
Each original categorical is read once into a row of a small table (one row per level, one for
an unseen level, one for missing) holding its encoded slots, so a batch is one table lookup per
column after the records are read as the model's other columns are.

Which algorithm applies which encoding is genmodel's ``getCategoricalEncoding``: the shared-tree
models (GBM, DRF) map every encoding but ``Enum``/``SortByResponse`` (those need none), Deep
Learning maps ``Binary``, ``Eigen`` and ``LabelEncoder`` only and has no encoder for the others
(genmodel cannot load such a MOJO, so neither does the native backend).
"""

from __future__ import annotations

import re

from ._archive import MojoArchive
from ._ini import MojoInfo, _unescape, split_java_lines
from ._numpy import numpy_when_used
from ._rows import RowSchema
from .backends import Backend
from .errors import CorruptMojoError

np = numpy_when_used(__name__)

#: per algorithm, the ``_genmodel_encoding`` values genmodel scores through an encoder (the rest
#: need none, or are refused by the algorithm's scorer); each one checked in the conformance corpus
ENCODINGS = {
    "gbm": ("OneHotExplicit", "Binary", "LabelEncoder", "Eigen", "EnumLimited"),
    "drf": ("OneHotExplicit", "Binary", "LabelEncoder", "Eigen", "EnumLimited"),
    "deeplearning": ("Binary", "LabelEncoder", "Eigen"),
}
_JAVA_INT = re.compile(r"[+-]?\d+")


def encoding_of(info: MojoInfo) -> str | None:
    """The encoding this module handles for the model, or None."""
    enc = str(info.get("_genmodel_encoding", "AUTO"))
    return enc if enc in ENCODINGS.get(info.algo, ()) else None


def original_schema(archive: MojoArchive, info: MojoInfo, **options) -> RowSchema:
    """The columns and levels the model was trained on, before encoding (``_orig_*`` files)."""
    names = _text_lines(archive, "_orig_names", int(info.require("_n_orig_names")), info)
    domains: list[list[str] | None] = []
    for i in range(int(info.require("_n_orig_domain_values"))):
        m = int(info.get(f"_m_orig_domain_values_{i}", 0))
        domains.append(_text_lines(archive, f"_orig_domain_values_{i}", m, info) if m > 0 else None)
    n = len(names) - (1 if info.supervised and names and names[-1] == info.columns[-1] else 0)
    offset = str(info.get("offset_column") or "") or None
    if offset is not None and n and names[n - 1] == offset:  # read as the offset, not a feature
        n -= 1
    return RowSchema(names, domains, n, offset, info.source, **options)


def _text_lines(archive: MojoArchive, name: str, count: int, info: MojoInfo) -> list[str]:
    lines = [_unescape(s) for s in split_java_lines(archive.read_text(name))]
    if len(lines) < count:
        raise CorruptMojoError(f"{name} has {len(lines)} lines, expected {count}", info.source)
    return lines[:count]


class _Column:
    """One original categorical: the table row of each level (``lookup``), the table of encoded
    slots, and the rows of an unseen and of a missing value (its last two)."""

    def __init__(self, lookup: dict[str, int], rows: list[list[float]], unseen: list[float],
                 retry: str | None = None) -> None:
        width = len(unseen)
        self.lookup = lookup
        self.table = np.array([*rows, unseen, [np.nan] * width], dtype=np.float64)
        self.table = self.table.reshape(-1, width)
        self.rows = self.table.tolist()
        self.unseen = len(rows)
        self.missing = len(rows) + 1
        self.retry = retry  # the encoder's second lookup: a format of the name and level


def _columns(info: MojoInfo, original: RowSchema, encoding: str) -> list[_Column | None]:
    """``*DomainMapConstructor``: the encoder of each original categorical."""
    columns: list[_Column | None] = []
    projection = [float(v) for v in info.get("_orig_projection_array", None) or []]
    at = 0
    for i, domain in enumerate(original.domains):
        if domain is None:
            columns.append(None)
            continue
        n = len(domain)
        index = {level: j for j, level in enumerate(domain)}
        if encoding == "OneHotExplicit":  # the NA level is the last slot
            hot = np.eye(n + 1).tolist()
            columns.append(_Column(index, hot[:n], hot[n]))
        elif encoding == "Binary":  # level j as j + 1 in binary, lowest bit first; NA is 0
            width = 1 + (n.bit_length() - 1)
            bits = [[float((j + 1) >> b & 1) for b in range(width)] for j in range(n)]
            columns.append(_Column(index, bits, [0.0] * width))
        elif encoding == "LabelEncoder":  # a level that Integer.parseInt reads is its number
            labels = [[float(_label(level, j))] for j, level in enumerate(domain)]
            columns.append(_Column(index, labels, [np.nan]))
        elif encoding == "Eigen":  # each level's projection, rounded to float32
            if at + n > len(projection):
                raise CorruptMojoError(f"_orig_projection_array has {len(projection)} values, too "
                                       "few for the categorical levels", info.source)
            values = np.asarray(projection[at:at + n], dtype=np.float32).astype(np.float64)
            at += n
            columns.append(_Column(index, [[v] for v in values.tolist()], [np.nan]))
        else:
            columns.append(_limited(info, i, domain))
    return columns


def _label(level: str, j: int) -> int:
    if _JAVA_INT.fullmatch(level) and -2**31 <= int(level) < 2**31:
        return int(level)
    return j


def _limited(info: MojoInfo, i: int, domain: list[str]) -> _Column:
    """``EnumLimitedEncoder``: a level's code in the model's (limited) domain of the same column;
    an original level left out of it scores as the ``other`` level, when there is one; a level
    missing from both is looked up once more as ``<column>.top_<level>_levels``."""
    limited = info.domains[i] if i < len(info.domains) else None
    if limited is None:
        raise CorruptMojoError(f"column {i} is categorical before EnumLimited encoding but numeric "
                               "after", info.source)
    code = {level: j for j, level in enumerate(limited)}
    other = code.get("other")
    if other is not None:
        for level in domain:
            code.setdefault(level, other)
        del code["other"]
    return _Column(code, [[float(j)] for j in range(len(limited))], [np.nan],
                   retry="{name}.top_{level}_levels")


class _InputSchema(RowSchema):
    """The original columns read as the model's would be, each categorical to its table row."""

    def __init__(self, original: RowSchema, columns: list[_Column | None]) -> None:
        names = original.feature_names
        super().__init__(names, original.domains, len(names), original.offset_column,
                         original.source, unknown_levels=original.unknown_levels,
                         invalid_numbers=original.invalid_numbers)
        self.columns = columns
        self.levels = [None if c is None else c.lookup for c in columns]

    def retry_level(self, name: str, idx: int, v: str):
        c = self.columns[idx]
        return c.lookup.get(c.retry.format(name=name, level=v)) if c.retry is not None else None

    def unseen_level(self, idx: int) -> float:
        return float(self.columns[idx].unseen)


class EncodingBackend(Backend):
    """Encodes original records into the model's columns, then scores them with ``inner``."""

    def __init__(self, inner: Backend, original: RowSchema, info: MojoInfo) -> None:
        self.inner = inner
        self.name = inner.name
        self.original = original
        self.encoding = encoding_of(info)
        self.n_encoded = info.n_features
        self.columns = _columns(info, original, self.encoding)
        self.input = _InputSchema(original, self.columns)
        self.slots = self._slots()
        self.in_place = self.slots == [(i, 1) for i in range(len(self.slots))]
        self.categoricals = [(i, c) for i, c in enumerate(self.columns) if c is not None]
        # ``preds_numpy``'s level codes (original domain order) as table rows
        self.code_rows = [None if c is None else np.array(
            [c.lookup.get(level, c.unseen) for level in d] + [c.missing], dtype=np.intp)
            for c, d in zip(self.columns, original.domains)]

    def _slots(self) -> list[tuple[int, int]]:
        """Per original feature: first encoded column and width (``*ColumnMapper``)."""
        widths = [1 if c is None else c.table.shape[1] for c in self.columns]
        if self.encoding not in ("OneHotExplicit", "Binary"):  # one column each, in place
            return [(i, 1) for i in range(len(widths))]
        at, slots = 0, [(0, 0)] * len(widths)
        for numbers_first in (True, False):  # numbers first, then categoricals, each in order
            for i, c in enumerate(self.columns):
                if (c is None) == numbers_first:
                    slots[i], at = (at, widths[i]), at + widths[i]
        return slots

    @property
    def scorer(self):
        """The native scorer behind the encoding (callers ask it whether one row avoids NumPy)."""
        return self.inner.scorer

    def output_columns(self):
        return self.inner.output_columns()

    def expand(self, raw: np.ndarray) -> np.ndarray:
        """Original columns (categoricals as table rows, NaN: missing) -> the model's columns."""
        X = np.full((raw.shape[0], self.n_encoded), np.nan)
        for i, (start, width) in enumerate(self.slots):
            c = self.columns[i]
            if c is None:
                X[:, start] = raw[:, i]
            else:
                rows = raw[:, i]
                rows = np.where(np.isnan(rows), c.missing, rows).astype(np.intp)
                X[:, start:start + width] = c.table[rows]
        return X

    def _expand_row(self, raw: list[float]) -> list[float]:
        if self.in_place:  # one slot per column, where it was: replace the categoricals' values
            for i, c in self.categoricals:
                v = raw[i]
                raw[i] = c.rows[c.missing if v != v else int(v)][0]
            return raw
        row = [float("nan")] * self.n_encoded
        for i, (start, width) in enumerate(self.slots):
            c = self.columns[i]
            v = raw[i]
            if c is None:
                row[start] = v
            else:
                row[start:start + width] = c.rows[c.missing if v != v else int(v)]
        return row

    def preds_row(self, record):
        if not hasattr(self.inner, "preds_raw_row"):
            return None
        raw, offset = self.input.encode_row(record)
        return self.inner.preds_raw_row(self._expand_row(raw), offset)

    def preds_records(self, records, offset):
        raw, off = self.input.encode_records(records)
        return self.inner.preds_numpy(self.expand(raw), offset if offset is not None else off)

    def preds_columns(self, cols, n, offset):
        raw, off = self.input.encode_columns(cols, n)
        return self.inner.preds_numpy(self.expand(raw), offset if offset is not None else off)

    def preds_numpy(self, X, offset):
        """``X`` holds the original features, categoricals as level codes (NaN: missing)."""
        X = self.original.check_codes(X).copy()
        for i, rows in enumerate(self.code_rows):
            if rows is not None:
                codes = X[:, i]
                X[:, i] = rows[np.where(np.isnan(codes), len(rows) - 1, codes).astype(np.intp)]
        return self.inner.preds_numpy(self.expand(X), offset)

    # -- explanations of the encoded columns the model scores, as genmodel gives them ----------
    def contribution_names(self):
        return self.inner.contribution_names()

    def _explained(self, what: str, records, **options):
        raw, _offset = self.input.encode_records(records)
        return self.inner.explain(what, self.expand(raw), **options)

    def close(self) -> None:
        self.inner.close()
