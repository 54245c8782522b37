"""The contract every native algorithm scorer follows: genmodel's ``score0`` over a batch."""

from __future__ import annotations

import numpy as np

from .._ini import MojoInfo
from ..errors import UnsupportedMojoError


class NativeScorer:
    """Scores a float64 matrix of raw rows (``n_features`` columns, categoricals as level codes).

    ``score(raw, offset)`` returns genmodel's ``preds`` per row: ``[label, p_0..p_{K-1}]`` for
    classifiers and ``[value]`` for regression. ``raw`` may be modified (GLM imputes in place, as
    genmodel does), so callers pass a copy they do not need.
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

    def requires_offset(self) -> bool:
        return False

    def score(self, raw: np.ndarray, offset: np.ndarray | None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _check_offset(self, offset):
        if offset is not None and not self.supports_offset and np.any(offset != 0):
            raise UnsupportedMojoError(
                f"{self.info.algo} model was not trained with an offset", self.info.source
            )
