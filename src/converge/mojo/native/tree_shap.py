"""SHAP contributions of GBM and DRF trees, as genmodel's ``TreeSHAP`` computes them.

genmodel runs the path-dependent TreeSHAP of XGBoost (Lundberg et al.) over its tree graph: node
weights come from the trees' auxiliary files (``trees/tCC_GGG_aux.bin``: per internal node the
weights going left and right), leaf values from the trees. Every operation is float32 in Java's
order; here each one is rounded to float32 the same way (``_f``), so answers are bit for bit.
A tree whose root is a leaf has no weight in genmodel's graph and contributes nothing.
"""

from __future__ import annotations

import struct
from array import array

from functools import cached_property

from ..errors import CorruptMojoError
from . import _compiled
from ._trees import _HI, _LO, _NA, _Builder

_AUX = struct.Struct("<iiffffffii")


def _f(x: float) -> float:
    """``x`` rounded to float32 (one float32 operation done in double and rounded once)."""
    return array("f", (x,))[0]


class _TreeShap:
    """TreeSHAP over one tree given as node lists (``left``/``right``, -1 below a leaf; split
    ``col``; float32 ``weight``; leaf ``value``) and the branch a row takes (``goes_right``)."""

    root: int
    left: list[int]
    right: list[int]
    col: list[int]
    weight: list[float]
    value: list[float]
    expected: float

    def goes_right(self, node: int, row) -> bool:  # pragma: no cover - each tree kind's own
        raise NotImplementedError

    def is_leaf(self, node: int) -> bool:
        return self.left[node] < 0

    def depth(self) -> int:
        """Internal levels below the root (the compiled walker sizes its path workspace by it)."""
        deepest, stack = 0, [(self.root, 0)]
        while stack:
            node, d = stack.pop()
            if not self.is_leaf(node):
                deepest = max(deepest, d + 1)
                stack += [(self.left[node], d + 1), (self.right[node], d + 1)]
        return deepest

    def _mean(self, node: int) -> float:
        """``nodeMeanValue``: the weighted mean of the leaves below ``node``, in float32."""
        w = self.weight[node]
        if w == 0:
            return 0.0
        if self.is_leaf(node):
            return self.value[node]
        left, right = self.left[node], self.right[node]
        total = _f(_f(self.weight[left] * self._mean(left)) + _f(self.weight[right] * self._mean(right)))
        return _f(total / w)

    # -- TreeSHAP, as genmodel writes it (condition 0: plain contributions) ----------------------
    def add(self, row, phi: list[float]) -> None:
        """Add this tree's contributions for ``row`` to ``phi`` (features, then the bias)."""
        phi[-1] = _f(phi[-1] + self.expected)
        self._shap(row, phi, self.root, 0, [], 1.0, 1.0, -1, 1.0)

    def _shap(self, row, phi, node, depth, parent, zero, one, feature, condition) -> None:
        if condition == 0:
            return
        path = [list(e) for e in parent[:depth]] + [[feature, zero, one, 1.0 if depth == 0 else 0.0]]
        for i in range(depth - 1, -1, -1):  # extendPath
            path[i + 1][3] = _f(path[i + 1][3] + _f(_f(_f(one * path[i][3]) * (i + 1)) / (depth + 1)))
            path[i][3] = _f(_f(_f(zero * path[i][3]) * (depth - i)) / (depth + 1))
        if self.is_leaf(node):
            value = self.value[node]
            for i in range(1, depth + 1):
                w = _unwound_sum(path, depth, i)
                el = path[i]
                phi[el[0]] = _f(phi[el[0]] + _f(_f(_f(w * _f(el[2] - el[1])) * value) * condition))
            return
        split = self.col[node]
        if self.goes_right(node, row):
            hot, cold = self.right[node], self.left[node]
        else:
            hot, cold = self.left[node], self.right[node]
        w = self.weight[node]
        hot_zero = _f(self.weight[hot] / w) if w != 0 else 0.5
        cold_zero = _f(self.weight[cold] / w) if w != 0 else 0.5
        incoming_zero = incoming_one = 1.0
        at = next((k for k in range(depth + 1) if path[k][0] == split), None)
        if at is not None:
            incoming_zero, incoming_one = path[at][1], path[at][2]
            _unwind(path, depth, at)
            depth -= 1
        self._shap(row, phi, hot, depth + 1, path, _f(hot_zero * incoming_zero), incoming_one,
                   split, condition)
        self._shap(row, phi, cold, depth + 1, path, _f(cold_zero * incoming_zero), 0.0,
                   split, condition)


class ShapTree(_TreeShap):
    """A GBM/DRF tree as genmodel's graph has it: splits from the tree's bytes, weights from its
    aux file; also each row's decision path (leaf assignment)."""

    def __init__(self, tree: bytes, aux: bytes, n_features: int, version: float, cat_lens,
                 name: str, source: str) -> None:
        b = _Builder(n_features, version, cat_lens, source)
        root = b.parse(tree, name)
        self.b, self.root, self.nf = b, root, n_features
        leaf = [b.left[i] == i for i in range(len(b.thr))]
        self.left = [-1 if lf else v for lf, v in zip(leaf, b.left)]
        self.right = [-1 if lf else v for lf, v in zip(leaf, b.right)]
        self.col, self.value = b.col, b.value
        self.weight = [0.0] * len(b.thr)  # a root that is a leaf keeps weight 0, as in genmodel
        self.nid = [0] * len(b.thr)  # H2O's node ids (the root's is 0)
        if b.left[root] != root:
            nodes = {}
            for k in range(0, len(aux) - len(aux) % _AUX.size, _AUX.size):
                rec = _AUX.unpack_from(aux, k)
                nodes[rec[0]] = rec
            self._weigh(root, 0, nodes, name, source)
            left, right = b.left[root], b.right[root]
            self.weight[root] = _f(self.weight[left] + self.weight[right])
        self.expected = self._mean(root)

    def _weigh(self, node: int, nid: int, aux: dict, name: str, source: str) -> None:
        rec = aux.get(nid)
        if rec is None:
            raise CorruptMojoError(f"{name}: no auxiliary record for node {nid}", source)
        _nid, _reserved, w_left, w_right, _pl, _pr, _el, _er, nid_left, nid_right = rec
        b = self.b
        for child, weight, child_nid in ((b.left[node], w_left, nid_left),
                                         (b.right[node], w_right, nid_right)):
            self.weight[child] = weight
            self.nid[child] = child_nid
            if not self.is_leaf(child):
                self._weigh(child, child_nid, aux, name, source)

    def goes_right(self, node: int, row, graph: bool = True) -> bool:
        """The branch this row takes: ``SharedTreeNode.next`` (``graph``, what TreeSHAP walks) or
        ``scoreTree`` (what scoring and leaf assignment follow); they differ only on a
        missing-vs-rest split below a bitset split."""
        b = self.b
        if graph and b.na_vs_rest[node]:  # no bitset in the graph: missing right, the rest left
            return row[b.col[node]] != row[b.col[node]]
        if b.tbl_node[node]:
            x = row[b.col[node]]
            off, n = b.tbl_off[node], b.tbl_len[node]
            if x != x:
                return bool(b.tables[off])
            code = int(x)
            if code < 0 or code >= n:
                return bool(b.tables[off + 1])
            return bool(b.tables[off + 2 + code])
        view, col = divmod(b.view_col[node], self.nf)
        x = row[col]
        if view == _NA:
            return x != x
        if x != x:
            return view == _HI
        assert view in (_LO, _HI)
        return x >= b.thr[node]

    def kernel_nodes(self) -> tuple[list[int], list[float], list[int], list[int], list[int], bytes]:
        """Per node, for the compiled walker: kind (0 leaf, 1 compare, 2 missing-or-not, 3 level
        table), threshold, NaN direction, table offset and length; and the tables."""
        b = self.b
        kind, thr, na_right, tbl_off, tbl_len = [], [], [], [], []
        for node in range(len(b.thr)):
            view = b.view_col[node] // self.nf
            if self.is_leaf(node):
                k = 0
            elif b.na_vs_rest[node] or (not b.tbl_node[node] and view == _NA):
                k = 2
            elif b.tbl_node[node]:
                k = 3
            else:
                k = 1
            kind.append(k)
            thr.append(b.thr[node] if k == 1 else 0.0)
            na_right.append(int(k == 1 and view == _HI))
            tbl_off.append(b.tbl_off[node] if k == 3 else 0)
            tbl_len.append(b.tbl_len[node] if k == 3 else 0)
        return kind, thr, na_right, tbl_off, tbl_len, bytes(b.tables)

    def path(self, row) -> str | None:
        """``getDecisionPath``: the turns from the root to this row's leaf (``"LRR"``; ``""`` for
        a tree that is one leaf; None past 63 levels, where genmodel's bit encoding ends)."""
        turns, _leaf = self._walk(row)
        return "".join(turns) if len(turns) < 64 else None

    def leaf_id(self, row) -> int:
        """``getLeafNodeId``: H2O's id of this row's leaf (0 for a tree that is one leaf)."""
        turns, leaf = self._walk(row)
        return self.nid[leaf] if len(turns) < 64 else -1

    def _walk(self, row) -> tuple[list[str], int]:
        """The turns ``scoreTree`` takes for ``row`` and the leaf it reaches."""
        node, turns = self.root, []
        while not self.is_leaf(node):
            right = self.goes_right(node, row, graph=False)
            turns.append("R" if right else "L")
            node = self.b.right[node] if right else self.b.left[node]
        return turns, node


_XGB_NODE = struct.Struct("<iiiIf")
_XGB_STAT = struct.Struct("<fffi")


class XGBoostTree(_TreeShap):
    """An XGBoost tree as xgboost-predictor's ``RegTreeImpl``: a missing value takes the node's
    default branch, a value ``< split_cond`` goes left; weights are the nodes' ``sum_hess`` (or
    H2O's ``auxNodeWeights``, as float)."""

    def __init__(self, nodes: bytes, stats: bytes, weights: list[float] | None) -> None:
        n = len(nodes) // _XGB_NODE.size
        self.root = 0
        self.left, self.right, self.col, self.value, self.default_left = [], [], [], [], []
        for k in range(n):
            _parent, left, right, sindex, value = _XGB_NODE.unpack_from(nodes, k * _XGB_NODE.size)
            self.left.append(left if left >= 0 else -1)
            self.right.append(right if left >= 0 else -1)
            self.col.append(sindex & 0x7FFFFFFF)
            self.default_left.append(bool(sindex >> 31))
            self.value.append(value)
        self.weight = ([_f(w) for w in weights] if weights is not None else
                       [_XGB_STAT.unpack_from(stats, k * _XGB_STAT.size)[1] for k in range(n)])
        self.expected = self._mean(0)

    def goes_right(self, node: int, row) -> bool:
        x = row[self.col[node]]
        if x != x:
            return not self.default_left[node]
        return not x < self.value[node]

    def kernel_nodes(self) -> tuple[list[int], list[float], list[int], list[int], list[int], bytes]:
        n = len(self.left)
        kind = [0 if self.is_leaf(k) else 1 for k in range(n)]
        thr = [self.value[k] if kind[k] else 0.0 for k in range(n)]
        na_right = [int(kind[k] == 1 and not self.default_left[k]) for k in range(n)]
        return kind, thr, na_right, [0] * n, [0] * n, b""

    @classmethod
    def all(cls, booster, aux: bytes | None) -> list[XGBoostTree]:
        """Every tree of a one-group booster, with ``auxNodeWeights`` (native-endian: an i32
        count, then per tree an i32 count and its f64 weights) where given."""
        weights: list[list[float] | None] = [None] * len(booster.tree_nodes)
        if aux is not None:
            (count,), at = struct.unpack_from("=i", aux), 4
            for t in range(count):
                (n,) = struct.unpack_from("=i", aux, at)
                weights[t] = list(struct.unpack_from(f"={n}d", aux, at + 4))
                at += 4 + 8 * n
        trees = []
        for t, n_nodes in enumerate(booster.tree_nodes):
            start = booster.tree_at[t]
            trees.append(cls(booster.nodes[start * _XGB_NODE.size:(start + n_nodes) * _XGB_NODE.size],
                             booster.stats[start * _XGB_STAT.size:(start + n_nodes) * _XGB_STAT.size],
                             weights[t]))
        return trees


def _unwind(path: list[list], depth: int, index: int) -> None:
    """``unwindPath``: undo the extension at ``index``."""
    one, zero = path[index][2], path[index][1]
    next_one = path[depth][3]
    for i in range(depth - 1, -1, -1):
        if one != 0:
            tmp = path[i][3]
            path[i][3] = _f(_f(next_one * (depth + 1)) / _f((i + 1) * one))
            next_one = _f(tmp - _f(_f(_f(path[i][3] * zero) * (depth - i)) / (depth + 1)))
        elif zero != 0:
            path[i][3] = _f(_f(path[i][3] * (depth + 1)) / _f(zero * (depth - i)))
        else:
            path[i][3] = 0.0
    for i in range(index, depth):
        path[i][0], path[i][1], path[i][2] = path[i + 1][0], path[i + 1][1], path[i + 1][2]


def _unwound_sum(path: list[list], depth: int, index: int) -> float:
    """``unwoundPathSum``: the total permutation weight were ``index`` unwound."""
    one, zero = path[index][2], path[index][1]
    next_one = path[depth][3]
    total = 0.0
    for i in range(depth - 1, -1, -1):
        if one != 0:
            tmp = _f(_f(next_one * (depth + 1)) / _f((i + 1) * one))
            total = _f(total + tmp)
            next_one = _f(path[i][3] - _f(_f(tmp * zero) * _f((depth - i) / (depth + 1))))
        elif zero != 0:
            total = _f(total + _f(_f(path[i][3] / zero) / _f((depth - i) / (depth + 1))))
    return total


class ShapForest:
    """The trees of one model, their contributions summed as ``TreeSHAPEnsemble`` does (the
    bias first, then every tree in order): in C where the kernels are built (the same float32
    operations), else in Python."""

    def __init__(self, trees: list[_TreeShap], bias: float) -> None:
        self.trees = trees
        self.bias = _f(bias)

    def __call__(self, X) -> list[list[float]]:
        """Per row of ``X`` (the inputs the trees split on): each input's contribution, then
        the bias term, as float32 values."""
        kernels = _compiled.kernels
        if kernels is not None and len(X):
            import numpy as np

            X = np.ascontiguousarray(X, dtype=np.float64)
            n, width = X.shape
            out = np.empty((n, width + 1), dtype=np.float32)
            kernels.tree_shap(X, n, width, *self._packed, self.bias, out)
            return out.astype(np.float64).tolist()
        out = []
        for row in X:
            row = [float(v) for v in row]
            phi = [0.0] * (len(row) + 1)
            phi[-1] = self.bias
            for tree in self.trees:
                tree.add(row, phi)
            out.append(phi)
        return out

    @cached_property
    def _packed(self) -> tuple:
        """Every tree's nodes in one set of arrays (children renumbered), their roots and
        expected values, and the deepest tree's depth."""
        cols = {k: array(t) for k, t in (("kind", "i"), ("col", "i"), ("left", "i"), ("right", "i"),
                                          ("na_right", "i"), ("tbl_off", "i"), ("tbl_len", "i"),
                                          ("weight", "f"), ("value", "f"))}
        thr, tables, roots, expected, depth = array("d"), bytearray(), array("i"), array("f"), 0
        for tree in self.trees:
            base, tbase = len(cols["kind"]), len(tables)
            kind, t_thr, na_right, tbl_off, tbl_len, t_tables = tree.kernel_nodes()
            cols["kind"].extend(kind)
            cols["col"].extend(c if k else 0 for c, k in zip(tree.col, kind))
            cols["left"].extend(v + base if k else 0 for v, k in zip(tree.left, kind))
            cols["right"].extend(v + base if k else 0 for v, k in zip(tree.right, kind))
            cols["na_right"].extend(na_right)
            cols["tbl_off"].extend(o + tbase for o in tbl_off)
            cols["tbl_len"].extend(tbl_len)
            cols["weight"].extend(tree.weight)
            cols["value"].extend(tree.value)
            thr.extend(t_thr)
            tables += t_tables
            roots.append(tree.root + base)
            expected.append(tree.expected)
            depth = max(depth, tree.depth())
        return (cols["kind"], cols["col"], cols["left"], cols["right"], thr, cols["na_right"],
                cols["tbl_off"], cols["tbl_len"], bytes(tables), cols["weight"], cols["value"],
                roots, expected, depth)
