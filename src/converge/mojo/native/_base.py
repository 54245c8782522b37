"""The contract every native algorithm scorer follows: genmodel's ``score0`` over a batch, and,
where it can be done without NumPy, over one row."""

from __future__ import annotations

from .._ini import MojoInfo
from .._numpy import numpy_when_used
from ..errors import UnsupportedMojoError

np = numpy_when_used(__name__)


class lazy_array:  # noqa: N801 - used like cached_property
    """A NumPy copy of a plain-list attribute, made on first use: batches need it, one row does not
    (``beta = lazy_array("beta_list", "float64")``)."""

    def __init__(self, source: str, dtype: str) -> None:
        self.source = source
        self.dtype = dtype

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = np.asarray(getattr(obj, self.source), dtype=self.dtype)
        obj.__dict__[self.name] = value  # later reads find the array without this method
        return value


class NativeScorer:
    """Scores a float64 matrix of raw rows (``n_features`` columns, categoricals as level codes).

    ``score(raw, offset)`` returns genmodel's ``preds`` per row: ``[label, p_0..p_{K-1}]`` for
    classifiers and ``[value]`` for regression. ``raw`` may be modified (GLM imputes in place, as
    genmodel does), so callers pass a copy they do not need.

    ``score_row(row, offset)`` gives the same ``preds`` for one row (a list, ``offset`` a float or
    None); where ``rows_without_numpy()`` says so, it runs in plain Python and the compiled
    kernels, and a cold process answers its first request without importing NumPy.
    """

    #: highest mojo_version this scorer has been written for
    max_version = 1.0
    supports_offset = False

    def __init__(self, info: MojoInfo) -> None:
        self.info = info
        if info.mojo_version > self.max_version + 1e-9:
            raise UnsupportedMojoError(
                f"{info.algo} mojo_version {info.mojo_version} is newer than supported "
                f"{self.max_version}",
                info.source,
            )
        self.n_features = info.n_features
        self.n_classes = info.n_classes
        self.threshold = float(info.get("default_threshold", 0.5))
        self.prior = info.get("prior_class_distrib")
        self.balance = bool(info.get("balance_classes", False))

    def contribution_names(self) -> list[str]:
        """The columns of ``contributions``: each input column, then ``BiasTerm``."""
        return [*self.info.columns[: self.n_features], "BiasTerm"]

    def requires_offset(self) -> bool:
        return False

    def output_columns(self) -> list[str] | None:
        """None for the classic ``predict``/class-probability columns; otherwise the column names
        as genmodel's ``PredictCsv`` prints them, one per number ``score`` returns."""
        return None

    def score(self, raw: np.ndarray, offset: np.ndarray | None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def rows_without_numpy(self) -> bool:
        """Whether ``score_row`` avoids NumPy (trees and layers need the compiled kernels)."""
        return False

    def row_plan(self):
        """A compiled plan (``_kernels.plan_*``) that scores one row of this model, without an
        offset, in one call, or None where the one-row path stays in Python."""
        return None

    def score_row(self, row: list[float], offset: float | None) -> list[float]:
        """One row as a batch of one; scorers with a plain-Python path override this."""
        off = None if offset is None else np.array([offset])
        return self.score(np.array([row], dtype=np.float64), off)[0].tolist()

    def _check_offset(self, offset):
        if offset is not None and not self.supports_offset and np.any(offset != 0):
            self._refuse_offset()

    def _check_row_offset(self, offset: float | None) -> None:
        if offset is not None and not self.supports_offset and offset != 0:
            self._refuse_offset()

    def _refuse_offset(self):
        raise UnsupportedMojoError(
            f"{self.info.algo} model was not trained with an offset", self.info.source
        )
