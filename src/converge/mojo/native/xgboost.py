"""XGBoost: the legacy binary booster, scored in float32 like xgboost-predictor.

Loading keeps the booster's node records as they are stored (20 bytes each) with one offset per
tree, checked in C; on first use C turns them into the branch-free records the tree walker reads
(``_kernels.xgb_flatten``: a split reads its feature with missing values as -inf or +inf, as its
default direction needs), and the compiled kernel (``_kernels.xgb_score``) walks those for one row
or a batch and applies the objective, all in float32. Without the compiled kernels the nodes are unpacked into NumPy arrays and walked level
by level for all rows at once.
"""

from __future__ import annotations

import math
import struct
from array import array
from functools import cached_property

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from . import _compiled, _scalar
from ._base import NativeScorer
from .deeplearning import cat_hot_index, cat_hot_row

np = numpy_when_used(__name__)

_NODE = [("parent", "<i4"), ("cleft", "<i4"), ("cright", "<i4"), ("sindex", "<u4"), ("value", "<f4")]
_CHUNK_CELLS = 1 << 22
_NODE_SIZE = 20
_OBJECTIVE_CODES = {"binary:logistic": 1, "reg:logistic": 1, "multi:softprob": 2,
                    "count:poisson": 3, "reg:gamma": 3, "reg:tweedie": 3}


def _f32(x: float) -> float:
    """x rounded to float32 (a float32 operation on float32 operands done in float64 and rounded
    once gives the float32 result: double rounding is innocuous at 53 >= 2 * 24 + 2 bits)."""
    return array("f", [x])[0]


class _Reader:
    def __init__(self, buf: bytes, source: str):
        self.buf = buf
        self.pos = 0
        self.source = source

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise CorruptMojoError("boosterBytes is truncated", self.source)
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))

    def string(self) -> str:
        (n,) = self.unpack("Q")
        if n > 1 << 20:
            raise CorruptMojoError("boosterBytes has an absurd string length", self.source)
        return self.take(n).decode("utf-8", "replace")


class Booster:
    """Trees of a gbtree/dart booster: their node records back to back (``nodes``), where each
    tree starts (``tree_at``, in nodes) and its output group (``tree_info``)."""

    def __init__(self, buf: bytes, source: str):
        self.source = source
        r = _Reader(buf, source)
        head = r.take(4)
        if head == b"binf":
            head = r.take(4)
        elif head[:3] == b"\x00\x05\x5f":
            raise UnsupportedMojoError("xgboost4j-spark booster format", source)
        (self.base_score,) = struct.unpack("<f", head)
        (self.num_feature, self.num_class, with_pbuffer, _metrics, self.major, self.minor) = r.unpack("IiiiII")
        r.take(27 * 4)
        self.objective = r.string()
        self.gbm = r.string()
        if self.gbm not in ("gbtree", "dart", "gblinear"):
            raise UnsupportedMojoError(f"xgboost booster {self.gbm!r}", source)
        if self.objective not in ("binary:logistic", "reg:logistic", "multi:softprob", "reg:linear",
                                  "reg:squarederror", "reg:gamma", "reg:tweedie", "count:poisson",
                                  "binary:logitraw"):
            raise UnsupportedMojoError(f"xgboost objective {self.objective!r}", source)
        self.n_groups = self.num_class if self.num_class != 0 else 1
        self.old_order = self.major < 1 or (self.major == 1 and self.minor <= 2)
        self.linear: array | None = None
        self.weight_drop: array | None = None
        self.tree_at, self.tree_info, self.nodes, self.stats = array("q"), array("i"), b"", b""
        if self.gbm == "gblinear":
            self._read_linear(r)
            return
        num_trees, _roots, _nf, _pad, num_pbuffer, _nog, size_leaf_vector = r.unpack("iiiiqii")
        r.take(31 * 4 + 4)
        parts: list[bytes] = []
        stats: list[bytes] = []
        self.tree_at = array("q")
        self.tree_nodes: list[int] = []
        total = 0
        for _t in range(num_trees):
            p = r.unpack("iiiiii")
            r.take(31 * 4)
            n_nodes = p[1]
            if n_nodes <= 0 or n_nodes > 1 << 24:
                raise CorruptMojoError(f"xgboost tree with {n_nodes} nodes", source)
            self.tree_at.append(total)
            self.tree_nodes.append(n_nodes)
            parts.append(r.take(n_nodes * _NODE_SIZE))
            stats.append(r.take(n_nodes * 16))  # node stats: TreeSHAP reads their sum_hess
            total += n_nodes
        self.nodes = b"".join(parts)
        self.stats = b"".join(stats)
        self.tree_info = array("i", struct.unpack(f"<{num_trees}i", r.take(4 * num_trees)))
        if num_pbuffer != 0 and with_pbuffer:
            r.take(2 * 4 * self.n_groups * num_pbuffer * (size_leaf_vector + 1))
        self.weight_drop = None
        if self.gbm == "dart" and num_trees:
            (n,) = r.unpack("Q")
            self.weight_drop = array("f", struct.unpack(f"<{n}f", r.take(4 * n)))
        if any(g < 0 or g >= self.n_groups for g in self.tree_info):
            raise CorruptMojoError("xgboost tree_info names a missing output group", source)
        if self.weight_drop is not None:
            for g in range(self.n_groups):
                if self.tree_info.tolist().count(g) > len(self.weight_drop):
                    raise CorruptMojoError("dart weight_drop is shorter than a tree group", source)
        self.n_input = self._check(parts)

    def _read_linear(self, r: _Reader) -> None:
        """gblinear: its own parameters (ignored by xgboost-predictor, which takes the feature and
        group counts from the learner), then one weight per (feature, group) and a bias per group."""
        r.take(34 * 4)
        (n,) = r.unpack("Q")
        expected = (self.num_feature + 1) * self.n_groups
        if n != expected:
            raise CorruptMojoError(f"gblinear has {n} weights, expected {expected}", self.source)
        self.linear = array("f", struct.unpack(f"<{n}f", r.take(4 * n)))
        self.n_input = self.num_feature

    def linear_margins(self, F: np.ndarray, base: np.ndarray) -> np.ndarray:
        """``GBLinear.pred`` for every row (n, groups), float32: the group's bias plus the base
        margin, then ``value * weight`` added feature by feature, missing values skipped."""
        n, G = F.shape[0], self.n_groups
        if n == 1:  # one row: plain float32 arithmetic beats a NumPy call per feature
            return np.array([self.linear_margins_row(F[0].tolist(), float(base[0]))], dtype=np.float32)
        w = np.frombuffer(self.linear, dtype=np.float32)
        out = np.empty((n, G), dtype=np.float32)
        present = ~np.isnan(F)
        for g in range(G):
            psum = (w[self.num_feature * G + g] + base).astype(np.float32)
            for fid in range(self.num_feature):
                term = F[:, fid] * w[fid * G + g]
                psum = np.where(present[:, fid], psum + term, psum)
            out[:, g] = psum
        return out

    def linear_margins_row(self, x: list[float], base: float) -> list[float]:
        """``linear_margins`` for one row of float32 values (NaN: missing), in plain Python."""
        G, w, out = self.n_groups, self.linear, []
        for g in range(G):
            psum = _f32(w[self.num_feature * G + g] + base)
            for fid in range(self.num_feature):
                if x[fid] == x[fid]:
                    psum = _f32(psum + _f32(x[fid] * w[fid * G + g]))
            out.append(psum)
        return out

    def _check(self, parts: list[bytes]) -> int:
        """Every tree is a tree with finite splits; returns 1 + the highest feature split on."""
        kernels = _compiled.kernels
        if kernels is None:
            return self.arrays.n_input
        top = -1
        for part, n_nodes in zip(parts, self.tree_nodes):
            try:
                col, _depth = kernels.xgb_check(part, n_nodes)
            except ValueError as e:
                raise CorruptMojoError(str(e), self.source) from None
            except NotImplementedError as e:
                raise UnsupportedMojoError(str(e), self.source) from None
            top = max(top, col)
        return top + 1

    @cached_property
    def arrays(self) -> _Arrays:
        return _Arrays(self)

    def base_margin(self) -> float:
        """``base_score`` as a margin, in float32 (a Python float holding a float32 value)."""
        b = _f32(self.base_score)
        if self.major >= 1:
            obj = self.objective
            if obj in ("binary:logistic", "reg:logistic"):
                x = _f32(_f32(1.0 / b) - 1.0) if b != 0 else float("inf")
                return _f32(-_scalar.log(x))
            if obj in ("count:poisson", "reg:gamma", "reg:tweedie"):
                return _f32(_scalar.log(b))
        return b

    def margins(self, F: np.ndarray, base: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Raw margins (n, groups) in float32; ``F`` is the float32 feature matrix (NaN = missing)
        and ``col`` each node's column in it."""
        a = self.arrays
        n, width = F.shape
        T = a.roots.size
        lo = np.where(np.isnan(F), np.float32(-np.inf), F)
        hi = np.where(np.isnan(F), np.float32(np.inf), F)
        V = np.concatenate([lo, hi], axis=1).ravel()
        vcol = np.where(a.default_left, col, col + width)
        base_idx = np.repeat(np.arange(n, dtype=np.intp) * (2 * width), T)
        node = np.tile(a.roots, n)
        for _ in range(a.max_depth):
            go_right = ~(np.take(V, base_idx + np.take(vcol, node)) < np.take(a.cond, node))
            node = np.take(a.child, 2 * node + go_right)
        leaves = np.take(a.value, node).reshape(n, T)
        out = np.empty((n, self.n_groups), dtype=np.float32)
        weight_drop = None if self.weight_drop is None else np.asarray(self.weight_drop, np.float32)
        for g, trees in enumerate(a.group_trees):
            vals = leaves[:, trees]
            if weight_drop is not None:
                vals = vals * weight_drop[: trees.size]
            start = np.zeros((n, 1), np.float32) if self.old_order else base.reshape(n, 1)
            acc = np.cumsum(np.concatenate([start, vals], axis=1), axis=1, dtype=np.float32)[:, -1]
            out[:, g] = acc + base if self.old_order else acc
        return out

    def transform(self, m: np.ndarray) -> np.ndarray:
        obj = self.objective
        one = np.float32(1.0)
        with np.errstate(over="ignore"):
            if obj in ("binary:logistic", "reg:logistic"):
                e = np.exp(-m.astype(np.float64)).astype(np.float32)
                return one / (one + e)
            if obj == "multi:softprob":
                mx = m[:, :1].copy()
                for k in range(1, m.shape[1]):
                    mx = np.maximum(m[:, k : k + 1], mx)
                e = np.exp((m - mx).astype(np.float64)).astype(np.float32)
                s = np.zeros(m.shape[0])
                for k in range(m.shape[1]):
                    s += e[:, k].astype(np.float64)
                return e / s.astype(np.float32)[:, None]
            if obj in ("count:poisson", "reg:gamma", "reg:tweedie"):
                return np.exp(m.astype(np.float64)).astype(np.float32)
        return m

    def transform_row(self, m: list[float]) -> list[float]:
        """``transform`` for one row of float32 margins, in plain Python (float32 rounding)."""
        obj = self.objective
        if obj in ("binary:logistic", "reg:logistic"):
            return [_f32(1.0 / _f32(1.0 + _f32(_scalar.exp(-v)))) for v in m]
        if obj == "multi:softprob":
            mx = m[0]
            for v in m[1:]:
                mx = _scalar.maximum(v, mx)
            e = [_f32(_scalar.exp(_f32(v - mx))) for v in m]
            s = _f32(_scalar.sum_in_order(e))
            return [_f32(_scalar.div(v, s)) for v in e]
        if obj in ("count:poisson", "reg:gamma", "reg:tweedie"):
            return [_f32(_scalar.exp(v)) for v in m]
        return m


class _Arrays:
    """The booster's nodes unpacked into flat NumPy arrays, for the NumPy walker (no compiler)."""

    def __init__(self, b: Booster):
        source = b.source
        cols, conds, lefts, rights, dleft, values, roots = [], [], [], [], [], [], []
        offset = 0
        max_depth = 0
        for at, n_nodes in zip(b.tree_at, b.tree_nodes):
            nodes = np.frombuffer(b.nodes, dtype=np.dtype(_NODE), count=n_nodes, offset=at * _NODE_SIZE)
            leaf = nodes["cleft"] == -1
            idx = np.arange(n_nodes)
            cl = np.where(leaf, idx, nodes["cleft"])
            cr = np.where(leaf, idx, nodes["cright"])
            if (cl < 0).any() or (cl >= n_nodes).any() or (cr < 0).any() or (cr >= n_nodes).any():
                raise CorruptMojoError("xgboost tree child index out of range", source)
            split = (nodes["sindex"] & 0x7FFFFFFF).astype(np.int64)
            cond = np.where(leaf, np.float32(np.nan), nodes["value"])
            if not np.isfinite(cond[~leaf]).all():
                raise UnsupportedMojoError("xgboost split on a non-finite value", source)
            cols.append(np.where(leaf, 0, split))
            conds.append(cond)
            lefts.append(cl + offset)
            rights.append(cr + offset)
            dleft.append((nodes["sindex"] >> 31).astype(np.bool_) & ~leaf)
            values.append(np.where(leaf, nodes["value"], np.float32(0)))
            roots.append(offset)
            offset += n_nodes
            max_depth = max(max_depth, _depth(cl, cr))
        self.max_depth = max_depth
        ip = np.intp
        self.col = np.concatenate(cols).astype(ip) if cols else np.zeros(0, ip)
        self.cond = np.concatenate(conds).astype(np.float32) if conds else np.zeros(0, np.float32)
        self.default_left = np.concatenate(dleft) if dleft else np.zeros(0, bool)
        self.child = np.empty(2 * offset, dtype=ip)
        if offset:
            self.child[0::2] = np.concatenate(lefts)
            self.child[1::2] = np.concatenate(rights)
        self.value = np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32)
        self.roots = np.asarray(roots, dtype=ip)
        info = np.asarray(b.tree_info, dtype=np.int64)
        # per group: tree positions in order, and (dart) the drop weight of the i-th tree *of the group*
        self.group_trees = [np.flatnonzero(info == g) for g in range(b.n_groups)]
        self.n_input = int(self.col.max()) + 1 if self.col.size else 0


def _depth(cl: np.ndarray, cr: np.ndarray) -> int:
    """Longest root-to-leaf path (leaves point at themselves)."""
    frontier = np.array([0])
    d = seen = 0
    while frontier.size:
        seen += frontier.size
        if seen > cl.size:
            raise CorruptMojoError("xgboost tree is not a tree (cycle or shared node)", "boosterBytes")
        nxt = np.concatenate([cl[frontier], cr[frontier]])
        nxt = nxt[nxt != np.concatenate([frontier, frontier])]
        if nxt.size:
            d += 1
        frontier = nxt
    return d


class XGBoostScorer(NativeScorer):
    max_version = 1.10

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        g = info.get
        self.booster_type = g("booster")
        self.nums = int(info.require("nums"))
        self.cats = int(info.require("cats"))
        self.cat_offsets_list = [int(v) for v in g("cat_offsets", [0])]
        self.use_all = bool(g("use_all_factor_levels", True))
        self.sparse = bool(g("sparse", False))
        self.has_offset = bool(g("has_offset", False))
        if len(self.cat_offsets_list) != self.cats + 1:
            raise CorruptMojoError("XGBoost cat_offsets do not match cats", info.source)
        self.booster = b = Booster(archive.read_bytes("boosterBytes"), info.source)
        # per-node weights that replace the booster's sum_hess for TreeSHAP, where H2O wrote them
        self._aux_weights = archive.read_bytes("auxNodeWeights") if archive.exists("auxNodeWeights") else None
        cw = self.cat_offsets_list[-1]
        if b.n_input > cw + self.nums:
            raise CorruptMojoError("booster splits on a feature beyond the input width", info.source)
        if self.cats + self.nums > self.n_features:
            raise CorruptMojoError("XGBoost cats and nums exceed the model's columns", info.source)
        K = self.n_classes
        groups = b.n_groups
        if (K > 2 and groups != K) or (K <= 2 and groups != 1):
            raise CorruptMojoError(f"booster has {groups} output groups for {K} classes", info.source)
        self.supports_offset = self.has_offset
        # the compiled kernel's view: each one-hot slot's categorical, the base margin, the objective
        self.kernel_cat_offsets = array("q", self.cat_offsets_list)
        self.kernel_cat_map = array("i", [c for c in range(self.cats)
                                          for _ in range(self.cat_offsets_list[c + 1]
                                                         - self.cat_offsets_list[c])])
        self.kernel_weights = b.weight_drop if b.weight_drop is not None else array("f")
        self.kernel_base = array("f", [b.base_margin()])
        self.objective_code = _OBJECTIVE_CODES.get(b.objective, 0)
        if b.linear is not None and b.num_feature != cw + self.nums:
            raise CorruptMojoError("gblinear's feature count does not match the input width", info.source)

    def requires_offset(self) -> bool:
        return self.has_offset

    # -- SHAP contributions (genmodel's XGBoostContributionsPredictor) ----------------------------
    def contribution_names(self) -> list[str]:
        """One per one-hot input (each level, then ``<column>.missing(NA)``) and per number, as
        genmodel names the inputs XGBoost saw; then ``BiasTerm``."""
        names = []
        for c, column in enumerate(self.info.columns[: self.n_features]):
            domain = self.info.domains[c]
            names += [column] if domain is None else [f"{column}.{d}" for d in domain] + [f"{column}.missing(NA)"]
        return [*names, "BiasTerm"]

    def contributions(self, raw) -> list[list[float]]:
        from .tree_shap import ShapForest, XGBoostTree

        b = self.booster
        if b.linear is not None:
            raise UnsupportedMojoError("contributions of a gblinear booster (genmodel has none)", self.info.source)
        if self.n_classes > 2:
            raise UnsupportedMojoError("Calculating contributions is currently not supported for "
                                       "multinomial models.", self.info.source)
        forest = self.__dict__.get("_shap_forest")
        if forest is None:
            forest = self._shap_forest = ShapForest(XGBoostTree.all(b, self._aux_weights), b.base_margin())
        return forest(self._linear_features(raw))

    def rows_without_numpy(self) -> bool:
        return _compiled.kernels is not None or self.booster.linear is not None

    @cached_property
    def cat_offsets(self) -> np.ndarray:
        return np.asarray(self.cat_offsets_list, dtype=np.int64)

    @cached_property
    def _used(self) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """For the NumPy path: the inputs some split reads (node columns renumbered into them),
        how many of those are one-hot slots, and each slot's categorical."""
        a = self.booster.arrays
        internal = np.isfinite(a.cond)
        used = np.unique(a.col[internal]) if internal.any() else np.zeros(1, dtype=np.intp)
        col = np.searchsorted(used, a.col).astype(np.intp)
        col[~internal] = 0
        cw = int(self.cat_offsets[-1])
        cat_map = np.zeros(max(cw, 1), dtype=np.intp)
        for c in range(self.cats):
            cat_map[self.cat_offsets[c] : self.cat_offsets[c + 1]] = c
        return used, col, int(np.searchsorted(used, cw)), cat_map

    def features(self, raw: np.ndarray) -> np.ndarray:
        """``OneHotEncoderFactory.fromArray`` as float32 (NaN = missing), only for the features the
        trees split on (columns in ``used`` order)."""
        used, _col, k, cat_map = self._used
        n = raw.shape[0]
        cw = int(self.cat_offsets[-1])
        F = np.empty((n, used.size), dtype=np.float32)
        if k:
            not_hot = np.float32(np.nan) if self.sparse else np.float32(0)
            hot = cat_hot_index(raw, self.cats, self.cat_offsets, self.use_all)
            slots = used[:k]
            F[:, :k] = np.where(hot[:, cat_map[slots]] == slots, np.float32(1), not_hot)
        if k < used.size:
            with np.errstate(over="ignore"):
                nums = raw[:, self.cats + (used[k:] - cw)].astype(np.float32)
            if self.sparse:
                nums[nums == 0] = np.float32(np.nan)
            F[:, k:] = nums
        return F

    @cached_property
    def flat_nodes(self) -> bytes:
        """The booster's nodes as the compiled walker's branch-free records (``xgb_flatten``)."""
        width = self.cat_offsets_list[-1] + self.n_features - self.cats
        return _compiled.kernels.xgb_flatten(self.booster.nodes, self.booster.tree_at, width)

    def _kernel_outputs(self, raw, n: int, base, out) -> None:
        b = self.booster
        _compiled.kernels.xgb_score(
            raw, n, self.n_features, self.cats, self.kernel_cat_offsets, self.kernel_cat_map,
            self.use_all, self.sparse, self.flat_nodes, b.tree_at, b.tree_info, self.kernel_weights,
            b.n_groups, base, b.old_order, self.objective_code, out)  # fmt: skip

    def _linear_features(self, raw: np.ndarray) -> np.ndarray:
        """Every input of ``OneHotEncoderFactory.fromArray`` as float32 (NaN = missing)."""
        cw = self.cat_offsets_list[-1]
        n = raw.shape[0]
        F = np.empty((n, cw + self.nums), dtype=np.float32)
        if cw:
            not_hot = np.float32(np.nan) if self.sparse else np.float32(0)
            hot = cat_hot_index(raw, self.cats, self.cat_offsets, self.use_all)
            slots = np.arange(cw)
            cat_of = np.repeat(np.arange(self.cats), np.diff(self.cat_offsets))
            F[:, :cw] = np.where(hot[:, cat_of] == slots, np.float32(1), not_hot)
        with np.errstate(over="ignore"):
            nums = raw[:, self.cats : self.cats + self.nums].astype(np.float32)
        if self.sparse:
            nums[nums == 0] = np.float32(np.nan)
        F[:, cw:] = nums
        return F

    def _outputs(self, raw: np.ndarray, offset) -> np.ndarray:
        """The booster's float32 outputs, shape (n, groups)."""
        n = raw.shape[0]
        b = self.booster
        if b.linear is not None:
            if self.has_offset:
                base = (np.zeros(n) if offset is None else offset).astype(np.float32)
            else:
                base = np.full(n, self.kernel_base[0], dtype=np.float32)
            return b.transform(b.linear_margins(self._linear_features(raw), base))
        if _compiled.kernels is not None:
            raw = np.ascontiguousarray(raw, dtype=np.float64)
            out = np.empty((n, b.n_groups), dtype=np.float32)
            if self.has_offset:
                base = (np.zeros(n) if offset is None else offset).astype(np.float32)
            else:
                base = self.kernel_base
            self._kernel_outputs(raw, n, base, out)
            return out
        step = max(1, _CHUNK_CELLS // max(1, b.arrays.roots.size))
        outs = []
        for s in range(0, n, step):
            part = raw[s : s + step]
            m = part.shape[0]
            if self.has_offset:
                base = (np.zeros(m) if offset is None else offset[s : s + step]).astype(np.float32)
            else:
                base = np.full(m, self.kernel_base[0], dtype=np.float32)
            outs.append(b.transform(b.margins(self.features(part), base, self._used[1])))
        return np.concatenate(outs) if outs else np.zeros((0, b.n_groups), np.float32)

    def score(self, raw, offset):
        self._check_offset(offset)
        n = raw.shape[0]
        out = self._outputs(raw, offset)
        K = self.n_classes
        if K > 2:
            from ._labels import multinomial_labels

            res = np.empty((n, K + 1))
            res[:, 1:] = out
            res[:, 0] = multinomial_labels(res[:, 1:], self.info.get("prior_class_distrib"), raw)
            return res
        if K == 2:
            res = np.empty((n, 3))
            res[:, 1] = np.float32(1.0) - out[:, 0]
            res[:, 2] = out[:, 0]
            res[:, 0] = res[:, 2] >= self.threshold
            return res
        return out[:, :1].astype(np.float64)

    def row_plan(self):
        kernels = _compiled.kernels
        if kernels is None or self.has_offset or self.n_classes > 2 or self.booster.linear is not None:
            return None
        b = self.booster
        return kernels.plan_xgb(
            self.flat_nodes, b.tree_at.tobytes(), b.tree_info.tobytes(), self.kernel_weights.tobytes(),
            self.kernel_base[0], self.kernel_cat_offsets.tobytes(), self.kernel_cat_map.tobytes(),
            self.n_features, self.cats, self.use_all, self.sparse, b.old_order, self.objective_code,
            self.n_classes == 2, self.threshold)  # fmt: skip

    def _linear_features_row(self, row: list[float]) -> list[float]:
        """``_linear_features`` for one row."""
        not_hot = math.nan if self.sparse else 0.0
        x = []
        for c in range(self.cats):
            lo, hi = self.cat_offsets_list[c], self.cat_offsets_list[c + 1]
            hot = cat_hot_row(row[c], lo, hi, self.use_all)
            x += [1.0 if s == hot else not_hot for s in range(lo, hi)]
        for v in row[self.cats : self.cats + self.nums]:
            v = _f32(v)
            x.append(math.nan if self.sparse and v == 0 else v)
        return x

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        b = self.booster
        if b.linear is not None:
            base = _f32(offset or 0.0) if self.has_offset else self.kernel_base[0]
            out = b.transform_row(b.linear_margins_row(self._linear_features_row(row), base))
        else:
            out = array("f", bytes(4 * b.n_groups))
            base = array("f", [offset or 0.0]) if self.has_offset else self.kernel_base
            self._kernel_outputs(array("d", row), 1, base, out)
        K = self.n_classes
        if K > 2:
            from ._labels import multinomial_label_row

            P = list(out)
            return [float(multinomial_label_row(P, self.prior, row)), *P]
        if K == 2:
            p1 = out[0]
            return [1.0 if p1 >= self.threshold else 0.0, _f32(1.0 - p1), p1]
        return [out[0]]
