"""The native backend: our own MOJO reader and scorers (NumPy, compiled kernels, plain Python)."""

from __future__ import annotations

from .._archive import MojoArchive
from .._ini import MojoInfo
from .._numpy import numpy_when_used
from .._rows import RowSchema
from ..errors import UnsupportedMojoError
from ..native import _compiled, build_scorer
from . import Backend

np = numpy_when_used(__name__)
_UNBUILT = object()
#: the algorithms that answer each of ``NativeBackend.explain``'s questions
_EXPLAINED = {"contributions": "GBM, DRF, XRT and XGBoost", "leaf_assignment": "GBM, DRF and XRT",
              "calibrated": "binomial GBM and DRF trained with calibrate_model",
              "reconstruct": "GLRM"}


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

    def __getstate__(self) -> dict:
        """Pickled without the one-row plan (a C object): it is built again on first use."""
        return {k: v for k, v in self.__dict__.items() if k != "_plan"}

    def _row_plan(self):
        """The scorer's one-row plan, built on first use; None for models with an offset."""
        plan = self.__dict__.get("_plan", _UNBUILT)
        if plan is _UNBUILT:
            plan = None
            if self.schema.offset_column is None and not self.scorer.requires_offset():
                plan = self.scorer.row_plan()
            self._plan = plan
        return plan

    def has_row_plan(self) -> bool:
        """Whether one record is one compiled call (the model has a one-row plan)."""
        return _compiled.kernels is not None and self._row_plan() is not None

    def preds_row(self, record):
        if not self.scorer.rows_without_numpy():
            return None
        row, offset = self.schema.encode_row(record)
        return self.preds_raw_row(row, offset)

    def preds_raw_row(self, row: list[float], offset: float | None):
        """``preds`` of one row already in the model's raw columns, without NumPy (None where
        the scorer has no such path)."""
        if not self.scorer.rows_without_numpy():
            return None
        if offset is None and self.scorer.requires_offset():
            offset = 0.0
        kernels = _compiled.kernels
        plan = self._row_plan() if offset is None and kernels is not None else None
        if plan is not None:
            preds = kernels.plan_row(plan, row)
            if preds is not None:
                return preds
        return self.scorer.score_row(row, offset)

    def record_output(self, record, classes, names):
        kernels = _compiled.kernels
        plan = self._row_plan() if kernels is not None else None
        if plan is None:
            return None
        schema = self.schema
        return kernels.plan_record(plan, record, schema.index, schema.levels, classes, names)

    def preds_records(self, records, offset):
        raw, off = self.schema.encode_records(records)
        return self._score(raw, offset if offset is not None else off)

    def contribution_names(self):
        return self.scorer.contribution_names()

    def reconstruction(self, records):
        rows = self._explained("reconstruct", records)  # refuses a model that is not a GLRM
        return self.scorer.reconstruction_names(), rows

    def _explained(self, what: str, records, **options):
        raw, _offset = self.schema.encode_records(records)
        return self.explain(what, raw, **options)

    def explain(self, what: str, raw, **options):
        """The scorer's ``what`` (``contributions``, ``leaf_assignment``, ``calibrated``,
        ``reconstruct``) for rows in the model's columns, where its algorithm has one."""
        method = getattr(self.scorer, what, None)
        if method is None:
            raise UnsupportedMojoError(
                f"{what.replace('_', ' ')}: computed for {_EXPLAINED[what]} models only, not "
                f"{self.scorer.info.algo}", self.scorer.info.source)
        return method(raw, **options)

    def preds_columns(self, cols, n, offset):
        raw, off = self.schema.encode_columns(cols, n)
        return self._score(raw, offset if offset is not None else off)

    def preds_numpy(self, X, offset):
        raw = self.schema.check_codes(X).copy()
        return self._score(raw, offset)
