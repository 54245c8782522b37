"""The native backend: our own MOJO reader and scorers (NumPy, compiled kernels, plain Python)."""

from __future__ import annotations

from .._archive import MojoArchive
from .._ini import MojoInfo
from .._numpy import numpy_when_used
from .._rows import RowSchema
from ..native import build_scorer
from . import Backend

np = numpy_when_used(__name__)


class NativeBackend(Backend):
    name = "native"

    def __init__(self, archive: MojoArchive, info: MojoInfo, schema: RowSchema) -> None:
        self.scorer = build_scorer(archive, info)  # raises UnsupportedMojoError
        self.schema = schema

    def output_columns(self):
        return self.scorer.output_columns()

    def _score(self, raw, offset):
        if offset is None and self.scorer.requires_offset():
            offset = np.zeros(raw.shape[0])
        return self.scorer.score(raw, offset)

    def preds_row(self, record):
        if not self.scorer.rows_without_numpy():
            return None
        row, offset = self.schema.encode_row(record)
        if offset is None and self.scorer.requires_offset():
            offset = 0.0
        return self.scorer.score_row(row, offset)

    def preds_records(self, records, offset):
        raw, off = self.schema.encode_records(records)
        return self._score(raw, offset if offset is not None else off)

    def preds_columns(self, cols, n, offset):
        raw, off = self.schema.encode_columns(cols, n)
        return self._score(raw, offset if offset is not None else off)

    def preds_numpy(self, X, offset):
        raw = self.schema.check_codes(X).copy()
        return self._score(raw, offset)
