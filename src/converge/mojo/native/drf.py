"""DRF and XRT: averaged (regression, binomial) or normalised (multinomial) tree votes."""

from __future__ import annotations

from .._numpy import numpy_when_used
from ..errors import UnsupportedMojoError
from . import _compiled, _scalar
from .gbm import TreeScorer, finish_classification, finish_classification_row

np = numpy_when_used(__name__)


class DrfScorer(TreeScorer):
    def __init__(self, info, archive) -> None:
        super().__init__(info, archive)
        self.double_trees = bool(info.get("binomial_double_trees", False))

    def _check_contributions(self) -> None:
        super()._check_contributions()
        if self.double_trees:
            raise UnsupportedMojoError("Calculating contributions is currently not supported for "
                                       "model with binomial_double_trees parameter set.", self.info.source)

    def _finish_contributions(self, rows: list[list[float]]) -> list[list[float]]:
        """``ContributionsPredictorDRF.getContribs``: averaged over the trees; a binomial's
        trees vote for the first class, so its values change sign and each non-zero one gains
        an equal share of 1 (one per used variable and the bias)."""
        from .tree_shap import _f

        if self.n_classes == 1:
            ratio, normalizer = 0.0, float(self.n_groups)
        else:
            ratio, normalizer = _f(1.0 / (self._used_variables() + 1)), float(-self.n_groups)
        return [[_f(ratio + _f(v / normalizer)) if v != 0 else v for v in row] for row in rows]

    def _used_variables(self) -> int:
        """Variables with a non-zero importance, from the MOJO's model details (read once)."""
        if "_used" in self.__dict__:
            return self._used
        import json

        details = json.loads(self._shap_file("experimental/modelDetails.json") or b"{}")
        table = details["output"]["variable_importances"]
        names = [c["name"] for c in table["columns"]]
        column = table["data"][names.index("relative_importance")]
        self._used = sum(1 for v in column if v != 0)
        return self._used

    def score(self, raw, offset):
        self._check_offset(offset)
        S = self.forest.sums(raw)
        n = raw.shape[0]
        K = self.n_classes
        if K == 1:
            return (S[:, 0] / self.n_groups).reshape(n, 1)
        if K == 2 and not self.double_trees:
            P = np.empty((n, 2))
            P[:, 0] = S[:, 0] / self.n_groups
            P[:, 1] = 1.0 - P[:, 0]
        else:
            P = S[:, :K].copy()
            s = np.zeros(n)
            for k in range(K):
                s += P[:, k]
            pos = s > 0
            P[pos] /= s[pos, None]
        return finish_classification(self, P, raw)

    def row_plan(self):
        if self.n_classes == 1:
            return self._tree_plan(_compiled.DRF_REGRESSION)
        if self.n_classes == 2 and not self.double_trees:
            return self._tree_plan(_compiled.DRF_BINOMIAL)
        return None

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        S = self.forest.row_sums(row)
        K = self.n_classes
        if K == 1:
            return [_scalar.div(S[0], self.n_groups)]
        if K == 2 and not self.double_trees:
            p0 = _scalar.div(S[0], self.n_groups)
            P = [p0, 1.0 - p0]
        else:
            P = S[:K]
            s = _scalar.sum_in_order(P)
            if s > 0:
                P = [v / s for v in P]
        return finish_classification_row(self, P, row)
