"""PCA: the row projected on the eigenvectors (``PCAMojoModel.score0``).

Categorical columns pick their level's eigenvector row (missing and unseen levels add nothing);
numeric columns are standardised with the training ``normSub``/``normMul`` and not imputed, so a
missing number gives missing components, as in genmodel.
"""

from __future__ import annotations

import struct

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError
from ._base import NativeScorer

np = numpy_when_used(__name__)


class PcaScorer(NativeScorer):
    def __init__(self, info, archive) -> None:
        super().__init__(info)
        self.k = int(info.require("k"))
        self.use_all = bool(info.require("use_all_factor_levels"))
        self.perm = [int(v) for v in info.require("permutation")]
        self.ncats = int(info.require("ncats"))
        self.nnums = int(info.require("nnums"))
        self.sub = [float(v) for v in info.get("normSub") or []] if self.nnums else []
        self.mul = [float(v) for v in info.get("normMul") or []] if self.nnums else []
        self.cat_offsets = [int(v) for v in info.require("catOffsets")]
        size = int(info.require("eigenvector_size"))
        blob = archive.read_bytes("eigenvectors_raw")
        if len(blob) < 8 * size * self.k or len(self.perm) != self.ncats + self.nnums:
            raise CorruptMojoError("PCA eigenvectors do not match k and eigenvector_size", info.source)
        flat = struct.unpack_from(f">{size * self.k}d", blob)  # a Java ByteBuffer: big-endian
        self.vectors = [list(flat[r * self.k : (r + 1) * self.k]) for r in range(size)]

    def output_columns(self) -> list[str]:
        return [f"PC{i + 1}" for i in range(self.k)]

    def rows_without_numpy(self) -> bool:
        return True

    def _cat_rows(self, row: list[float]) -> list[int | None]:
        """Per categorical column, the eigenvector row of its level (None: adds nothing)."""
        out = []
        for j in range(self.ncats):
            v = row[self.perm[j]]
            if v != v:
                out.append(None)
                continue
            last = self.cat_offsets[j + 1] - self.cat_offsets[j] - 1
            level = int(v) - (0 if self.use_all else 1)
            out.append(None if level < 0 or level > last else self.cat_offsets[j] + level)
        return out

    def score_row(self, row, offset):
        cat_rows = self._cat_rows(row)
        nums = [(row[self.perm[self.ncats + j]] - self.sub[j]) * self.mul[j] for j in range(self.nnums)]
        start = self.cat_offsets[self.ncats]
        out = []
        for i in range(self.k):
            t = 0.0
            for r in cat_rows:
                if r is not None:
                    t += self.vectors[r][i]
            for j, v in enumerate(nums):
                t += v * self.vectors[start + j][i]
            out.append(t)
        return out

    def score(self, raw, offset):
        n = raw.shape[0]
        V = np.asarray(self.vectors, dtype=np.float64).reshape(-1, self.k)
        cat_rows = []
        for j in range(self.ncats):
            v = raw[:, self.perm[j]]
            nan = np.isnan(v)
            last = self.cat_offsets[j + 1] - self.cat_offsets[j] - 1
            level = np.trunc(np.where(nan, -1.0, v)) - (0 if self.use_all else 1)
            ok = ~nan & (level >= 0) & (level <= last)
            cat_rows.append((ok, np.where(ok, self.cat_offsets[j] + level, 0).astype(np.intp)))
        out = np.zeros((n, self.k))
        with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN as in Java
            nums = [(raw[:, self.perm[self.ncats + j]] - self.sub[j]) * self.mul[j]
                    for j in range(self.nnums)]
            self._project(out, cat_rows, nums, V)
        return out

    def _project(self, out, cat_rows, nums, V):
        n, start = out.shape[0], self.cat_offsets[self.ncats]
        for i in range(self.k):
            t = np.zeros(n)
            for ok, r in cat_rows:
                t = np.where(ok, t + V[r, i], t)
            for j, v in enumerate(nums):
                t = t + v * V[start + j, i]
            out[:, i] = t
