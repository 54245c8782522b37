"""Uplift DRF (BinomialUplift): two trees per group, the first voting for a positive response
with treatment, the second without; ``UpliftDrfMojoModel.unifyPreds`` averages each over the
groups and answers their difference first."""

from __future__ import annotations

from .._numpy import numpy_when_used
from . import _scalar
from .gbm import TreeScorer

np = numpy_when_used(__name__)


class UpliftDrfScorer(TreeScorer):
    def output_columns(self) -> list[str]:
        return ["uplift_predict", "p_y1_with_treatment", "p_y1_without_treatment"]

    def score(self, raw, offset):
        self._check_offset(offset)
        S = self.forest.sums(raw)
        treated = S[:, 0] / self.n_groups
        control = S[:, 1] / self.n_groups
        return np.stack([treated - control, treated, control], axis=1)

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        S = self.forest.row_sums(row)
        treated = _scalar.div(S[0], self.n_groups)
        control = _scalar.div(S[1], self.n_groups)
        return [treated - control, treated, control]
