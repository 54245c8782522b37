"""Models trained on encoded categoricals (H2O's ``categorical_encoding``): the MOJO's columns are
the encoded ones (``c1:0``, ``c1.a``...), and genmodel's ``EasyPredictModelWrapper`` turns each
original column into them before ``score0`` (``hex.genmodel.easy.*Encoder``). The same happens
here, in front of the native scorer, which then sees plain numeric columns.

Slots start as NaN, as genmodel's ``nanArray``: a categorical left out of the row (PredictCsv's
empty cell) leaves every slot missing, while an unseen level is encoded as genmodel's NA level.

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
from .errors import CorruptMojoError, InvalidInputError

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
    offset = info.get("offset_column")
    return RowSchema(names, domains, n, str(offset) if offset else None, info.source, **options)


def _text_lines(archive: MojoArchive, name: str, count: int, info: MojoInfo) -> list[str]:
    lines = [_unescape(s) for s in split_java_lines(archive.read_text(name))]
    if len(lines) < count:
        raise CorruptMojoError(f"{name} has {len(lines)} lines, expected {count}", info.source)
    return lines[:count]


def _eigen_values(info: MojoInfo, original: RowSchema) -> list[dict[str, float] | None]:
    """``EigenEncoderDomainMapConstructor``: ``_orig_projection_array`` holds, categorical after
    categorical, one number per level; each level scores as that number rounded to float32."""
    projection = [float(v) for v in info.get("_orig_projection_array", None) or []]
    at, values = 0, []
    for domain in original.domains:
        if domain is None:
            values.append(None)
            continue
        if at + len(domain) > len(projection):
            raise CorruptMojoError(f"_orig_projection_array has {len(projection)} values, too few "
                                   "for the categorical levels", info.source)
        chunk = np.asarray(projection[at:at + len(domain)], dtype=np.float32).astype(np.float64)
        values.append(dict(zip(domain, chunk.tolist())))
        at += len(domain)
    return values


def _limited_codes(info: MojoInfo, original: RowSchema) -> list[dict[str, int] | None]:
    """``EnumLimitedEncoder``: a level's code in the model's (limited) domain of the same column;
    an original level left out of it scores as the ``other`` level, when there is one."""
    codes: list[dict[str, int] | None] = []
    for i, domain in enumerate(original.domains):
        if domain is None:
            codes.append(None)
            continue
        limited = info.domains[i] if i < len(info.domains) else None
        if limited is None:
            raise CorruptMojoError(f"column {i} is categorical before EnumLimited encoding but "
                                   "numeric after", info.source)
        code = {level: j for j, level in enumerate(limited)}
        other = code.get("other")
        if other is not None:
            for level in domain:
                code.setdefault(level, other)
            del code["other"]
        codes.append(code)
    return codes


class EncodingBackend(Backend):
    """Encodes original records into the model's columns, then scores them with ``inner``."""

    def __init__(self, inner: Backend, original: RowSchema, info: MojoInfo) -> None:
        self.inner = inner
        self.name = inner.name
        self.original = original
        self.encoding = encoding_of(info)
        self.n_encoded = info.n_features
        self.slots = self._slots()
        #: Eigen and EnumLimited: per original feature, the encoded value of each level by name
        self.values = {"Eigen": _eigen_values, "EnumLimited": _limited_codes}.get(
            self.encoding, lambda *_: None)(info, original)

    def _slots(self) -> list[tuple[int, int]]:
        """Per original feature: first encoded column and width (``*ColumnMapper``)."""
        domains = self.original.domains
        if self.encoding in ("LabelEncoder", "Eigen", "EnumLimited"):  # one column each, in place
            return [(i, 1) for i in range(len(domains))]
        width = {"OneHotExplicit": lambda d: len(d) + 1,
                 "Binary": lambda d: 1 + (len(d).bit_length() - 1)}[self.encoding]
        at, slots = 0, [(0, 0)] * len(domains)
        for i, d in enumerate(domains):  # numbers first, then categoricals, each in order
            if d is None:
                slots[i], at = (at, 1), at + 1
        for i, d in enumerate(domains):
            if d is not None:
                slots[i], at = (at, width(d)), at + width(d)
        return slots

    def output_columns(self):
        return self.inner.output_columns()

    def encode(self, records: list) -> np.ndarray:
        X = np.full((len(records), self.n_encoded), np.nan)
        schema = self.original
        for r, record in enumerate(records):
            for name, value in record.items():
                i = schema.index.get(name)
                if i is None:
                    continue
                v = schema.normalize(name, i, value)
                if v is None:
                    continue
                start, width = self.slots[i]
                if schema.domains[i] is None:
                    X[r, start] = v if isinstance(v, float) else self._number(name, v)
                else:
                    self._level(X[r, start:start + width], name, i, v)
        return X

    def _number(self, name: str, s: str) -> float:
        try:
            return float(s.strip())
        except ValueError:
            if self.original.invalid_numbers == "raise":
                raise InvalidInputError(f"column {name!r}: {s!r} is not a number", self.original.source) from None
            return float("nan")

    def _level(self, out, name: str, i: int, level: str) -> None:
        if self.values is not None:
            values = self.values[i]
            v = values.get(level)
            if v is None and self.encoding == "EnumLimited":  # EnumLimitedEncoder's second lookup
                v = values.get(f"{name}.top_{level}_levels")
            if v is None and self.original.unknown_levels == "raise":
                raise InvalidInputError(f"column {name!r}: unknown level {level!r}",
                                        self.original.source)
            out[0] = np.nan if v is None else v
            return
        j = self.original.levels[i].get(level)
        if j is None and self.original.unknown_levels == "raise":
            raise InvalidInputError(f"column {name!r}: unknown level {level!r}", self.original.source)
        if self.encoding == "OneHotExplicit":  # the NA level is the last slot
            out[:] = 0.0
            out[len(self.original.domains[i]) if j is None else j] = 1.0
        elif self.encoding == "Binary":  # level j as j + 1 in binary, lowest bit first; NA is 0
            code = 0 if j is None else j + 1
            for b in range(len(out)):
                out[b] = (code >> b) & 1
        elif j is None:
            out[0] = np.nan
        elif _JAVA_INT.fullmatch(level) and -2**31 <= int(level) < 2**31:
            out[0] = int(level)  # LabelEncoder: a level that Integer.parseInt reads is its number
        else:
            out[0] = j

    def preds_records(self, records, offset):
        return self.inner.preds_numpy(self.encode(records), offset)

    def preds_columns(self, cols, n, offset):
        return self.preds_records([{k: v[r] for k, v in cols.items()} for r in range(n)], offset)

    def preds_numpy(self, X, offset):
        """``X`` holds the original features, categoricals as level codes (NaN: missing)."""
        X = np.asarray(X, dtype=np.float64)
        names, domains = self.original.feature_names, self.original.domains
        records = [{n: (None if np.isnan(v) else domains[i][int(v)] if domains[i] is not None else v)
                    for i, (n, v) in enumerate(zip(names, row))} for row in X.tolist()]
        return self.preds_records(records, offset)

    def close(self) -> None:
        self.inner.close()
