"""XGBoost: the legacy binary booster parsed in NumPy, scored in float32 like xgboost-predictor."""

from __future__ import annotations

import struct

import numpy as np

from ..errors import CorruptMojoError, UnsupportedMojoError
from ._base import NativeScorer
from .deeplearning import cat_hot_index

_NODE = np.dtype([("parent", "<i4"), ("cleft", "<i4"), ("cright", "<i4"), ("sindex", "<u4"),
                  ("value", "<f4")])
_F1 = np.float32(1.0)
_CHUNK_CELLS = 1 << 22


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
    """Trees of a gbtree/dart booster as flat arrays, grouped by output class."""

    def __init__(self, buf: bytes, source: str):
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
        if self.gbm not in ("gbtree", "dart"):
            raise UnsupportedMojoError(f"xgboost booster {self.gbm!r}", source)
        if self.objective not in ("binary:logistic", "reg:logistic", "multi:softprob", "reg:linear",
                                  "reg:squarederror", "reg:gamma", "reg:tweedie", "count:poisson",
                                  "binary:logitraw"):
            raise UnsupportedMojoError(f"xgboost objective {self.objective!r}", source)
        num_trees, _roots, _nf, _pad, num_pbuffer, _nog, size_leaf_vector = r.unpack("iiiiqii")
        r.take(31 * 4 + 4)
        self.n_groups = self.num_class if self.num_class != 0 else 1
        cols, conds, lefts, rights, dleft, values, roots = [], [], [], [], [], [], []
        offset = 0
        max_depth = 0
        for _t in range(num_trees):
            p = r.unpack("iiiiii")
            r.take(31 * 4)
            n_nodes = p[1]
            if n_nodes <= 0 or n_nodes > 1 << 24:
                raise CorruptMojoError(f"xgboost tree with {n_nodes} nodes", source)
            nodes = np.frombuffer(r.take(n_nodes * 20), dtype=_NODE)
            r.take(n_nodes * 16)  # node stats: not used for prediction
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
        info = np.frombuffer(r.take(4 * num_trees), dtype="<i4") if num_trees else np.zeros(0, "<i4")
        if num_pbuffer != 0 and with_pbuffer:
            r.take(2 * 4 * self.n_groups * num_pbuffer * (size_leaf_vector + 1))
        self.weight_drop = None
        if self.gbm == "dart" and num_trees:
            (n,) = r.unpack("Q")
            self.weight_drop = np.frombuffer(r.take(4 * n), dtype="<f4")
        if ((info < 0) | (info >= self.n_groups)).any():
            raise CorruptMojoError("xgboost tree_info names a missing output group", source)
        self.tree_info = info
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
        # per group: tree positions in order, and (dart) the drop weight of the i-th tree *of the group*
        self.group_trees = [np.flatnonzero(info == g) for g in range(self.n_groups)]
        if self.weight_drop is not None:
            for g in self.group_trees:
                if g.size > self.weight_drop.size:
                    raise CorruptMojoError("dart weight_drop is shorter than a tree group", source)
        self.old_order = self.major < 1 or (self.major == 1 and self.minor <= 2)
        self.n_input = int(self.col.max()) + 1 if self.col.size else 0

    def base_margin(self) -> np.float32:
        b = np.float32(self.base_score)
        if self.major >= 1:
            obj = self.objective
            with np.errstate(divide="ignore", invalid="ignore"):
                if obj in ("binary:logistic", "reg:logistic"):
                    return np.float32(-np.log(np.float64(_F1 / b - _F1)))
                if obj in ("count:poisson", "reg:gamma", "reg:tweedie"):
                    return np.float32(np.log(np.float64(b)))
        return b

    def margins(self, F: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Raw margins (n, groups) in float32; ``F`` is the float32 feature matrix (NaN = missing)."""
        n, width = F.shape
        T = self.roots.size
        lo = np.where(np.isnan(F), np.float32(-np.inf), F)
        hi = np.where(np.isnan(F), np.float32(np.inf), F)
        V = np.concatenate([lo, hi], axis=1).ravel()
        vcol = np.where(self.default_left, self.col, self.col + width)
        base_idx = np.repeat(np.arange(n, dtype=np.intp) * (2 * width), T)
        node = np.tile(self.roots, n)
        for _ in range(self.max_depth):
            go_right = ~(np.take(V, base_idx + np.take(vcol, node)) < np.take(self.cond, node))
            node = np.take(self.child, 2 * node + go_right)
        leaves = np.take(self.value, node).reshape(n, T)
        out = np.empty((n, self.n_groups), dtype=np.float32)
        for g, trees in enumerate(self.group_trees):
            vals = leaves[:, trees]
            if self.weight_drop is not None:
                vals = vals * self.weight_drop[: trees.size]
            start = np.zeros((n, 1), np.float32) if self.old_order else base.reshape(n, 1)
            acc = np.cumsum(np.concatenate([start, vals], axis=1), axis=1, dtype=np.float32)[:, -1]
            out[:, g] = acc + base if self.old_order else acc
        return out

    def transform(self, m: np.ndarray) -> np.ndarray:
        obj = self.objective
        with np.errstate(over="ignore"):
            if obj in ("binary:logistic", "reg:logistic"):
                e = np.exp(-m.astype(np.float64)).astype(np.float32)
                return _F1 / (_F1 + e)
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
        self.cat_offsets = np.asarray(g("cat_offsets", [0]), dtype=np.int64)
        self.use_all = bool(g("use_all_factor_levels", True))
        self.sparse = bool(g("sparse", False))
        self.has_offset = bool(g("has_offset", False))
        if len(self.cat_offsets) != self.cats + 1:
            raise CorruptMojoError("XGBoost cat_offsets do not match cats", info.source)
        self.booster = Booster(archive.read_bytes("boosterBytes"), info.source)
        width = int(self.cat_offsets[-1]) + self.nums
        if self.booster.n_input > width:
            raise CorruptMojoError("booster splits on a feature beyond the input width", info.source)
        K = self.n_classes
        groups = self.booster.n_groups
        if (K > 2 and groups != K) or (K <= 2 and groups != 1):
            raise CorruptMojoError(f"booster has {groups} output groups for {K} classes", info.source)
        self.supports_offset = self.has_offset
        # only the inputs some split reads are built; node columns are renumbered accordingly
        b = self.booster
        internal = np.isfinite(b.cond)
        self.used = np.unique(b.col[internal]) if internal.any() else np.zeros(1, dtype=np.intp)
        b.col = np.searchsorted(self.used, b.col).astype(np.intp)
        b.col[~internal] = 0
        cw = int(self.cat_offsets[-1])
        self.n_used_cat = int(np.searchsorted(self.used, cw))
        self.cat_map = np.zeros(max(cw, 1), dtype=np.intp)
        for c in range(self.cats):
            self.cat_map[self.cat_offsets[c] : self.cat_offsets[c + 1]] = c

    def requires_offset(self) -> bool:
        return self.has_offset

    def features(self, raw: np.ndarray) -> np.ndarray:
        """``OneHotEncoderFactory.fromArray`` as float32 (NaN = missing), only for the features the
        trees split on (columns in ``self.used`` order)."""
        n = raw.shape[0]
        cw = int(self.cat_offsets[-1])
        F = np.empty((n, self.used.size), dtype=np.float32)
        k = self.n_used_cat
        if k:
            not_hot = np.float32(np.nan) if self.sparse else np.float32(0)
            hot = cat_hot_index(raw, self.cats, self.cat_offsets, self.use_all)
            slots = self.used[:k]
            F[:, :k] = np.where(hot[:, self.cat_map[slots]] == slots, np.float32(1), not_hot)
        if k < self.used.size:
            with np.errstate(over="ignore"):
                nums = raw[:, self.cats + (self.used[k:] - cw)].astype(np.float32)
            if self.sparse:
                nums[nums == 0] = np.float32(np.nan)
            F[:, k:] = nums
        return F

    def score(self, raw, offset):
        self._check_offset(offset)
        n = raw.shape[0]
        b = self.booster
        step = max(1, _CHUNK_CELLS // max(1, b.roots.size))
        outs = []
        for s in range(0, n, step):
            part = raw[s : s + step]
            m = part.shape[0]
            if self.has_offset:
                base = (np.zeros(m) if offset is None else offset[s : s + step]).astype(np.float32)
            else:
                base = np.full(m, b.base_margin(), dtype=np.float32)
            outs.append(b.transform(b.margins(self.features(part), base)))
        out = np.concatenate(outs) if outs else np.zeros((0, b.n_groups), np.float32)
        K = self.n_classes
        if K > 2:
            from ._labels import multinomial_labels

            res = np.empty((n, K + 1))
            res[:, 1:] = out
            res[:, 0] = multinomial_labels(res[:, 1:], self.info.get("prior_class_distrib"), raw)
            return res
        if K == 2:
            res = np.empty((n, 3))
            res[:, 1] = _F1 - out[:, 0]
            res[:, 2] = out[:, 0]
            th = float(self.info.get("default_threshold", 0.5))
            res[:, 0] = res[:, 2] >= th
            return res
        return out[:, :1].astype(np.float64)
