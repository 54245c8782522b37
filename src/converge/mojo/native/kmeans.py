"""KMeans: the nearest centre (``GenModel.KMeans_closest``) after the MOJO's own standardisation.

Missing numbers take the training mean (missing levels the mode) when the model standardised;
otherwise a missing column is left out and the squared distance scaled up by the share of columns
present. A categorical column adds 1 when its level differs from the centre's.
"""

from __future__ import annotations

import sys

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError
from ._base import NativeScorer

np = numpy_when_used(__name__)

_DOUBLE_MAX = sys.float_info.max


class KMeansScorer(NativeScorer):
    def __init__(self, info) -> None:
        super().__init__(info)
        self.standardize = bool(info.get("standardize", False))
        nf = self.n_features
        self.is_cat = [d is not None for d in info.domains[:nf]]
        if self.standardize:
            self.means = [float(v) for v in info.require("standardize_means")]
            self.mults = [float(v) for v in info.require("standardize_mults")]
            self.modes = [int(v) for v in info.require("standardize_modes")]
        self.centers = [[float(v) for v in info.require(f"center_{c}")]
                        for c in range(int(info.require("center_num")))]
        for c in self.centers:
            if len(c) != nf:
                raise CorruptMojoError("a KMeans centre does not match n_features", info.source)

    def output_columns(self) -> list[str]:
        return ["cluster"]

    def rows_without_numpy(self) -> bool:
        return True

    def _prepare_row(self, row: list[float]) -> list[float]:
        """``Kmeans_preprocessData``."""
        if not self.standardize:
            return row
        out = []
        for d, mean, mult, mode in zip(row, self.means, self.mults, self.modes):
            if mode == -1:
                if d != d:
                    d = mean
                d = (d - mean) * mult
            elif d != d:
                d = float(mode)
            out.append(d)
        return out

    def score_row(self, row, offset):
        point = self._prepare_row(row)
        n = len(point)
        best, best_sqr = -1, _DOUBLE_MAX
        for cluster, center in enumerate(self.centers):
            sqr, pts = 0.0, n
            for d, c, cat in zip(point, center, self.is_cat):
                if d != d:
                    pts -= 1
                elif cat:
                    if d != c:
                        sqr += 1.0
                else:
                    delta = d - c
                    sqr += delta * delta
            if 0 < pts < n:
                sqr *= n / pts
            if sqr < best_sqr:
                best, best_sqr = cluster, sqr
        return [float(best)]

    def score(self, raw, offset):
        X = raw
        if self.standardize:
            X = raw.copy()
            for i, (mean, mult, mode) in enumerate(zip(self.means, self.mults, self.modes)):
                col = X[:, i]
                if mode == -1:
                    X[:, i] = (np.where(np.isnan(col), mean, col) - mean) * mult
                else:
                    X[:, i] = np.where(np.isnan(col), float(mode), col)
        n, nf = X.shape
        missing = np.isnan(X)
        pts = nf - missing.sum(axis=1)
        scale = np.where((pts > 0) & (pts < nf), nf / np.maximum(pts, 1), 1.0)
        partial = (pts > 0) & (pts < nf)
        best = np.full(n, -1.0)
        best_sqr = np.full(n, _DOUBLE_MAX)
        with np.errstate(invalid="ignore", over="ignore"):
            for cluster, center in enumerate(self.centers):
                sqr = np.zeros(n)
                for i in range(nf):
                    d = X[:, i]
                    if self.is_cat[i]:
                        term = (d != center[i]).astype(np.float64)
                    else:
                        delta = d - center[i]
                        term = delta * delta
                    sqr = np.where(missing[:, i], sqr, sqr + term)
                sqr = np.where(partial, sqr * scale, sqr)
                closer = sqr < best_sqr
                best = np.where(closer, float(cluster), best)
                best_sqr = np.where(closer, sqr, best_sqr)
        return best.reshape(n, 1)
