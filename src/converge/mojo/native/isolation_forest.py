"""IsolationForest: H2O shared trees whose leaves hold path lengths, summed over the forest and
normalised by the training minimum and maximum (``IsolationForestMojoModel.unifyPreds``)."""

from __future__ import annotations

from .._numpy import numpy_when_used
from .gbm import TreeScorer

np = numpy_when_used(__name__)


class IsolationForestScorer(TreeScorer):
    def __init__(self, info, archive) -> None:
        super().__init__(info, archive)
        self.min_length = int(info.get("min_path_length", 0))
        self.max_length = int(info.get("max_path_length", 0))
        self.flag = bool(info.get("output_anomaly_flag", False))

    def output_columns(self) -> list[str]:
        return ["predict", "score", "mean_length"] if self.flag else ["predict", "mean_length"]

    def score(self, raw, offset):
        total = self.forest.sums(raw)[:, 0]
        lo, hi = self.min_length, self.max_length
        score = (hi - total) / (hi - lo) if hi > lo else np.ones_like(total)
        mean = total / self.n_groups if self.n_groups >= 1 else np.zeros_like(total)
        cols = [score, mean]
        if self.flag:
            cols.insert(0, (score > self.threshold).astype(np.float64))
        return np.stack(cols, axis=1)

    def score_row(self, row, offset):
        total = self.forest.row_sums(row)[0]
        lo, hi = self.min_length, self.max_length
        score = (hi - total) / (hi - lo) if hi > lo else 1.0
        mean = total / self.n_groups if self.n_groups >= 1 else 0.0
        return [1.0 if score > self.threshold else 0.0, score, mean] if self.flag else [score, mean]
