"""ExtendedIsolationForest: trees split on random hyperplanes (``ExtendedIsolationForestMojoModel``).

Each ``trees/tNN.bin`` is a heap-numbered list of nodes (children of ``i`` are ``2i+1``, ``2i+2``):
a node holds the hyperplane's normal ``n`` and point ``p``, a leaf the number of training rows that
reached it. A row goes left when ``sum((x - p) * n) <= 0`` (a NaN goes right); its path length is
the leaf's depth plus the expected depth of an unsuccessful search among the leaf's rows.
"""

from __future__ import annotations

import math
import struct

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError
from . import _scalar
from ._base import NativeScorer

np = numpy_when_used(__name__)

_EULER = 0.5772156649  # genmodel's MathUtils.EULER_MASCHERONI_CONSTANT
_NODE, _LEAF = ord("N"), ord("L")


def unsuccessful_search_length(n: int) -> float:
    """``averagePathLengthOfUnsuccessfulSearch``: expected depth of a failed search in a BST of n."""
    if n < 2:
        return 0.0
    if n == 2:
        return 1.0
    return 2 * (math.log(n - 1) + _EULER) - (2.0 * (n - 1.0)) / n


class _Tree:
    """One tree as flat lists: per node its hyperplane (or None for a leaf), children and value."""

    def __init__(self, buf: bytes, n_features: int, name: str, source: str) -> None:
        def fail(why):
            raise CorruptMojoError(f"{name}: {why}", source)

        if len(buf) < 4:
            fail("tree shorter than its header")
        width = struct.unpack_from("<i", buf, 0)[0]
        if width != n_features:
            fail(f"hyperplanes of {width} columns, model has {n_features}")
        vec = struct.Struct(f"<{width}d")
        found: dict[int, tuple] = {}
        pos = 4
        try:
            while pos < len(buf):
                number, kind = struct.unpack_from("<iB", buf, pos)
                pos += 5
                if kind == _NODE:
                    normal = vec.unpack_from(buf, pos)
                    point = vec.unpack_from(buf, pos + 8 * width)
                    pos += 16 * width
                    found.setdefault(number, ("node", normal, point))
                elif kind == _LEAF:
                    found.setdefault(number, ("leaf", struct.unpack_from("<i", buf, pos)[0]))
                    pos += 4
                else:  # the writer's buffer is padded with zeros past the last record
                    break
        except struct.error:
            fail("truncated tree")
        # compact indices in heap order
        self.normal: list[tuple | None] = []
        self.point: list[tuple | None] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.value: list[float] = []  # depth + expected search length at leaves
        if 0 not in found:
            fail("tree has no root")
        self._add(found, 0, 0, fail)

    def _add(self, found: dict, number: int, depth: int, fail) -> int:
        me = len(self.value)
        entry = found.get(number)
        if entry is None:
            fail(f"node {number} is missing")
        self.normal.append(None)
        self.point.append(None)
        self.left.append(me)
        self.right.append(me)
        if entry[0] == "leaf":
            self.value.append(depth + unsuccessful_search_length(entry[1]))
        else:
            self.value.append(math.nan)
            self.normal[me], self.point[me] = entry[1], entry[2]
            self.left[me] = self._add(found, 2 * number + 1, depth + 1, fail)
            self.right[me] = self._add(found, 2 * number + 2, depth + 1, fail)
        return me

    def row_length(self, row: list[float]) -> float:
        i = 0
        normal, point, left, right = self.normal, self.point, self.left, self.right
        while normal[i] is not None:
            s = 0.0
            for x, p, n in zip(row, point[i], normal[i]):
                s += (x - p) * n
            i = left[i] if s <= 0 else right[i]
        return self.value[i]

    def lengths(self, X: np.ndarray) -> np.ndarray:
        """``row_length`` for every row, one tree level per step."""
        inner = [j for j, nrm in enumerate(self.normal) if nrm is not None]
        N = np.zeros((len(self.value), X.shape[1]))
        P = np.zeros_like(N)
        if inner:
            N[inner] = [self.normal[j] for j in inner]
            P[inner] = [self.point[j] for j in inner]
        left, right = np.asarray(self.left), np.asarray(self.right)
        is_node = np.zeros(len(self.value), dtype=bool)
        is_node[inner] = True
        at = np.zeros(X.shape[0], dtype=np.intp)
        active = np.arange(X.shape[0])
        while active.size:
            nodes = at[active]
            keep = is_node[nodes]
            active, nodes = active[keep], nodes[keep]
            if not active.size:
                break
            s = np.zeros(active.size)
            for c in range(X.shape[1]):  # genmodel's column order of summation
                s += (X[active, c] - P[nodes, c]) * N[nodes, c]
            at[active] = np.where(s <= 0, left[nodes], right[nodes])
        return np.asarray(self.value)[at]


class ExtendedIsolationForestScorer(NativeScorer):
    def __init__(self, info, archive) -> None:
        super().__init__(info)
        n_trees = int(info.get("ntrees", 0))
        self.sample_size = int(info.get("sample_size", 0))
        self.trees = []
        for t in range(n_trees):
            name = f"trees/t{t:02d}.bin"
            self.trees.append(_Tree(archive.read_bytes(name), self.n_features, name, info.source))
        self.expected = unsuccessful_search_length(self.sample_size)

    def output_columns(self) -> list[str]:
        return ["anomaly_score", "mean_length"]

    def rows_without_numpy(self) -> bool:
        return True

    def score(self, raw, offset):
        total = np.zeros(raw.shape[0])
        with np.errstate(invalid="ignore", over="ignore"):  # as Java: inf and NaN go right
            for tree in self.trees:
                total += tree.lengths(raw)
        mean = total / len(self.trees) if self.trees else total * math.nan
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            score = np.power(2.0, -1 * (mean / self.expected))
        return np.stack([score, mean], axis=1)

    def score_row(self, row, offset):
        total = 0.0
        for tree in self.trees:
            total += tree.row_length(row)
        mean = _scalar.div(total, len(self.trees))
        return [_scalar.power(2.0, -1 * _scalar.div(mean, self.expected)), mean]
