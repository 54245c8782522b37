"""Compressed H2O trees (GBM/DRF/XRT), scored from the MOJO's own bytes.

A forest keeps every tree exactly as the MOJO stores it (``trees/tCC_GGG.bin``), concatenated into
one byte string with one offset per tree: loading is reading the zip and one structural check per
tree in C (``_kernels.tree_check``), with no per-node Python objects. On the first prediction C
decodes the bytes into 16-byte node records (``Forest.flat``, ``_kernels.tree_flatten``) that the
compiled walkers step through without branches, for one row and for batches; ``_kernels.tree_walk``
decides each node straight from its bytes, as genmodel's ``scoreTree`` does, where the records
cannot be built. To walk a tree's nodes from Python, decode them with ``Forest.records`` (node
arrays, in the layout ``_Records`` documents).

Without the compiled kernels (no C compiler at install, or ``CONVERGE_MOJO_KERNEL=numpy``) the
trees are decoded once into node arrays and walked for all rows at once in NumPy. Every decision
genmodel makes (NaN direction, out-of-domain levels, bitset range, numeric ``>=``) is reduced at
decode time to one of two forms, so scoring is a handful of NumPy gathers per tree level:

* compare: ``go_right = V[row, col'] >= thr`` where ``col'`` selects one of three views of the
  input (NaN as -inf, NaN as +inf, or an is-missing indicator), chosen per node by its NA direction;
* table: a per-node lookup on the integer level, with slots for "missing" and "outside the bitset".

Leaves loop onto themselves, so every row simply takes ``max_depth`` steps.
"""

from __future__ import annotations

import math
import struct
from array import array
from functools import cached_property
from itertools import starmap

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from . import _compiled

np = numpy_when_used(__name__)

_F32 = struct.Struct("<f")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")

# Column views (multiplied by n_features and added to the column index).
_LO, _HI, _NA = 0, 1, 2
_NA_CODE, _OOR_CODE = -1, -2
#: rows x trees walked per NumPy pass; small enough to stay in cache
_CHUNK_CELLS = 1 << 16
#: rows x nodes up to which every node's test is evaluated up front (single-row latency)
_SMALL_CELLS = 1 << 15
#: single rows through forests of at most this many trees are walked in plain Python
_PY_TREES = 24
#: padded bitset tables (nodes x width) above this size fall back to per-level decoding
_FIXED_TABLE_CELLS = 1 << 24
#: ... or through forests at least this deep (unbalanced trees end early)
_PY_DEPTH = 10
#: trees deeper than this are walked with an active set that drops walkers already at a leaf
_DEEP = 8

_NA_LEFT = (2, 4)  # NaSplitDir NALeft, Left
_NA_VS_REST = 1
# a decoded node record: thr, vc, kind, left, right, tbl_off, tbl_len
_NODE = struct.Struct("<diiiiii")
_NODE_FIELDS = [("thr", "<f8"), ("vc", "<i4"), ("kind", "<i4"), ("left", "<i4"), ("right", "<i4"),
                ("tbl_off", "<i4"), ("tbl_len", "<i4")]
_K_LEAF, _K_COMPARE, _K_TABLE = 0, 1, 2
# the compiled walker's flags (see _kernels.c)
_NBITS_I32, _V1_0 = 1, 2


class _Builder:
    """Accumulates node arrays for a whole forest."""

    def __init__(self, n_features: int, version: float, cat_lens: list[int | None], source: str):
        self.nf = n_features
        self.version = version
        self.cat_lens = cat_lens
        self.source = source
        self.view_col: list[int] = []
        self.thr: list[float] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.value: list[float] = []
        self.tbl_node: list[bool] = []
        self.tbl_off: list[int] = []
        self.tbl_len: list[int] = []
        self.col: list[int] = []
        self.na_vs_rest: list[bool] = []  # SHAP's graph walks these as "missing or not"
        self.tables = bytearray()  # per table node: [na_right, oor_right, level 0, level 1, ...]
        self.max_depth = 0

    def _new(self) -> int:
        i = len(self.thr)
        self.view_col.append(0)
        self.thr.append(float("nan"))
        self.left.append(i)
        self.right.append(i)
        self.value.append(0.0)
        self.tbl_node.append(False)
        self.tbl_off.append(0)
        self.tbl_len.append(0)
        self.col.append(0)
        self.na_vs_rest.append(False)
        return i

    def leaf(self, v: float) -> int:
        i = self._new()
        self.value[i] = v
        return i

    def add_table(self, na_right: bool, oor_right: bool, levels: list[int]) -> tuple[int, int]:
        off = len(self.tables)
        self.tables.append(na_right)
        self.tables.append(oor_right)
        self.tables.extend(levels)
        return off, len(levels)

    def fail(self, why: str, tree: str):
        raise CorruptMojoError(f"{tree}: {why}", self.source)

    # -- decoding -----------------------------------------------------------------------------
    def parse(self, buf: bytes, name: str) -> int:
        if len(buf) < 7:
            self.fail("tree shorter than a leaf", name)
        try:
            root, _end = self._node(buf, 0, name, None, 1)
        except (struct.error, IndexError) as e:
            self.fail(f"truncated tree ({e})", name)
        return root

    def _leaf_at(self, buf: bytes, pos: int) -> int:
        return self.leaf(_F32.unpack_from(buf, pos)[0])

    def _node(self, buf: bytes, pos: int, name: str, stale, depth: int):
        node_type = buf[pos]
        col = _U16.unpack_from(buf, pos + 1)[0]
        if col == 0xFFFF:
            return self._leaf_at(buf, pos + 3), pos + 7
        if col >= self.nf:
            self.fail(f"split on column {col} >= n_features {self.nf}", name)
        if depth > 2000:
            self.fail("tree deeper than 2000 levels", name)
        self.max_depth = max(self.max_depth, depth)
        nadir = buf[pos + 3]
        pos += 4
        if nadir > 5:
            self.fail(f"bad NA split direction {nadir}", name)
        na_vs_rest = nadir == _NA_VS_REST
        na_right = nadir not in _NA_LEFT
        equal = node_type & 0x0C
        v = self.version
        split_val = None
        bitset = None  # (bitoff, nbits, bytes)
        if not na_vs_rest:
            if equal == 0:
                split_val = _F32.unpack_from(buf, pos)[0]
                pos += 4
            elif equal == 8:
                bitset = (0, 32, buf[pos : pos + 4])
                pos += 4
            elif equal == 12:
                bitoff = _U16.unpack_from(buf, pos)[0]
                if v >= 1.2 or v not in (1.0, 1.1):
                    nbits = _I32.unpack_from(buf, pos + 2)[0]
                    if nbits <= 0:
                        self.fail(f"bad bitset size {nbits}", name)
                    nbytes = ((nbits - 1) >> 3) + 1
                    pos += 6
                else:
                    nbytes = _U16.unpack_from(buf, pos + 2)[0]
                    nbits = nbytes * 8
                    pos += 4
                if pos + nbytes > len(buf):
                    self.fail("bitset runs past the end of the tree", name)
                bitset = (bitoff, nbits, buf[pos : pos + nbytes])
                pos += nbytes
            else:
                raise UnsupportedMojoError(f"{name}: legacy '==' float split", self.source)
            if bitset is not None:
                stale = bitset[:2]
        me = self._new()
        self.col[me] = col
        self.na_vs_rest[me] = na_vs_rest
        if split_val is not None or (na_vs_rest and (equal == 0 or stale is None or v == 1.0)):
            # plain compare; NaN (and, for >= 1.2, level >= domain size) -> NA direction
            if na_vs_rest:
                self.view_col[me] = _NA * self.nf + col
                self.thr[me] = 0.5
            else:
                self.view_col[me] = (_HI if na_right else _LO) * self.nf + col
                self.thr[me] = float(split_val)
        else:
            if bitset is not None:
                bitoff, nbits, raw = bitset
                # below bitoff is outside the bitset; bits are little-endian within each byte
                levels = [int(na_right and v != 1.0)] * bitoff
                levels += [(raw[k >> 3] >> (k & 7)) & 1 for k in range(nbits)]
            else:  # NAvsREST after a bitset on the path: genmodel checks the stale bitset's range
                bitoff, nbits = stale
                levels = [int(na_right)] * bitoff + [0] * nbits
            oor_right = na_right if v != 1.0 else False
            off, n = self.add_table(int(na_right), int(oor_right), levels)
            self.tbl_node[me] = True
            self.tbl_off[me] = off
            self.tbl_len[me] = n
            self.view_col[me] = col
            self.thr[me] = float("nan")
        lmask = node_type & 0x33
        if lmask == 48:
            left = self._leaf_at(buf, pos)
            pos += 4
        elif lmask <= 3:
            width = lmask + 1
            if width == 3:
                size = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
            elif width == 1:
                size = buf[pos]
            elif width == 2:
                size = _U16.unpack_from(buf, pos)[0]
            else:
                size = _I32.unpack_from(buf, pos)[0]
            pos += width
            left, end = self._node(buf, pos, name, stale, depth + 1)
            if end != pos + size:
                self.fail(f"left subtree size {size} does not match its content", name)
            pos = end
        else:
            self.fail(f"bad node type {node_type:#x}", name)
        rmask = (node_type & 0xC0) >> 2
        if rmask == 48:
            right = self._leaf_at(buf, pos)
            pos += 4
        elif rmask == 0:
            right, pos = self._node(buf, pos, name, stale, depth + 1)
        else:
            self.fail(f"bad node type {node_type:#x}", name)
        self.left[me] = left
        self.right[me] = right
        return me, pos


class _Records:
    """A forest decoded into 32-byte node records (leaf value in ``thr``; a table node names its
    column in ``vc``), the level tables as bytes, and one root per (class, group), a missing tree
    pointing at a shared zero leaf: what the NumPy walkers index."""

    def __init__(self, builder: _Builder, roots: list[list[int]]):
        b = builder
        self.nf = b.nf
        self.version = b.version
        self.max_depth = b.max_depth
        self.n_tpc = len(roots)
        self.n_groups = len(roots[0]) if roots else 0
        zero = len(b.thr)
        leaf = [l == r == i for i, (l, r) in enumerate(zip(b.left, b.right))] + [True]
        table = b.tbl_node + [False]
        thr = [v if lf else t for lf, v, t in zip(leaf, b.value, b.thr)] + [0.0]
        vc = [c if tb else v for tb, c, v in zip(table, b.col, b.view_col)] + [0]
        kind = [_K_LEAF if lf else _K_TABLE if tb else _K_COMPARE for lf, tb in zip(leaf, table)]
        self.nodes = b"".join(starmap(_NODE.pack, zip(
            thr, vc, kind, b.left + [zero], b.right + [zero], b.tbl_off + [0], b.tbl_len + [0])))
        self.tables = bytes(b.tables)
        self.roots = array("i", [r if r >= 0 else zero for group in roots for r in group])


class Forest:
    """All trees of one tree model, scored together.

    ``sums(X)`` returns, per row and per tree class, the float32 leaf values summed in float64 in
    tree order, exactly as ``SharedTreeMojoModel.scoreTreeRange`` does; ``row_sums(row)`` does the
    same for one row given as a list, without NumPy. ``trees`` holds every tree's bytes back to
    back and ``offsets[k * n_groups + g]`` where tree (class k, group g) starts (-1: no tree).
    """

    def __init__(self, trees: bytes, offsets: array, n_tpc: int, n_groups: int, cat_lens,
                 version: float, source: str):
        self.trees = trees
        self.offsets = offsets
        self.n_tpc = n_tpc
        self.n_groups = n_groups
        self.nf = len(cat_lens)
        self.version = version
        self.source = source
        # per feature, the level count past which a code is NA (mojo >= 1.2); NaN: never
        self.cat_ub = array("d", [n if n is not None and _new_codes(version) else math.nan
                                  for n in cat_lens])
        self.flags = (_NBITS_I32 if _new_codes(version) else 0) | (_V1_0 if version == 1.0 else 0)
        self.cat_lens = list(cat_lens)

    def sums(self, X: np.ndarray) -> np.ndarray:
        """Per-class tree sums, shape (n_rows, n_tpc)."""
        n = X.shape[0]
        if n == 0 or self.n_groups == 0:
            return np.zeros((n, self.n_tpc))
        if _compiled.kernels is None:
            return self.numpy_sums(X)
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty((n, self.n_tpc))
        flat = self.flat
        if flat is None:
            self._walk(X, n, out)
        else:
            nodes, tables, roots, code_cols = flat
            _compiled.kernels.tree_sums(X, n, self.nf, nodes, tables, self.cat_ub, code_cols,
                                        roots, self.n_tpc, self.n_groups, out)
        return out

    def row_sums(self, row: list[float]) -> list[float]:
        """``sums`` of one row, through the compiled walker (the caller checked it is built)."""
        flat = self.flat
        if flat is None:
            return _compiled.kernels.tree_row(row, self.nf, self.trees, self.offsets, self.cat_ub,
                                              self.flags, self.n_tpc, self.n_groups)
        nodes, tables, roots, code_cols = flat
        return _compiled.kernels.tree_flat_row(row, self.nf, nodes, tables, self.cat_ub, code_cols,
                                               roots, self.n_tpc, self.n_groups)

    def _walk(self, X, n: int, out) -> None:
        _compiled.kernels.tree_walk(X, n, self.nf, self.trees, self.offsets, self.cat_ub,
                                    self.flags, self.n_tpc, self.n_groups, out)

    def numpy_sums(self, X: np.ndarray) -> np.ndarray:
        """``sums`` by the NumPy walkers (the fallback, and the cross-check of the compiled one)."""
        return self.walkers.sums(X)

    def __getstate__(self) -> dict:
        """Pickled (to hand a parsed model to another process) as the bytes alone: the decoded
        layouts are rebuilt where they are needed."""
        return {k: v for k, v in self.__dict__.items() if k not in ("flat", "records", "walkers")}

    @cached_property
    def flat(self) -> tuple[bytes, bytes, bytes, bytes] | None:
        """The trees decoded in C into 12-byte node records (``tree_flatten``), built on the first
        prediction: walking them takes a compare and a conditional move per node, where the MOJO's
        variable-length nodes cost branches the CPU mispredicts from row to row (None if the level
        tables would be too large; rows then walk the bytes)."""
        try:
            return _compiled.kernels.tree_flatten(self.trees, self.offsets, self.nf, self.flags)
        except MemoryError:
            return None

    @cached_property
    def records(self) -> _Records:
        """The trees decoded node by node (in Python: slow for big forests, used without C)."""
        b = _Builder(self.nf, self.version, self.cat_lens, self.source)
        view = memoryview(self.trees)
        roots = [[-1] * self.n_groups for _ in range(self.n_tpc)]
        for k in range(self.n_tpc):
            for g in range(self.n_groups):
                at = self.offsets[k * self.n_groups + g]
                if at >= 0:
                    roots[k][g] = b.parse(view[at:], f"trees/t{k:02d}_{g:03d}.bin")
        return _Records(b, roots)

    @cached_property
    def walkers(self) -> _Walkers:
        return _Walkers(self.records, self.cat_ub)


class _Walkers:
    """The NumPy walkers and the node arrays they index, derived from a forest's records."""

    def __init__(self, f: _Records, cat_ub: array):
        nf = self.nf = f.nf
        self.version = f.version
        self.max_depth = f.max_depth
        self.roots = np.frombuffer(f.roots, dtype=np.int32).astype(np.intp).reshape(
            f.n_tpc, f.n_groups)
        self.flat_roots = self.roots.ravel()
        ip = np.intp
        rec = np.frombuffer(f.nodes, dtype=np.dtype(_NODE_FIELDS))
        leaf = rec["kind"] == _K_LEAF
        self.tbl_node = rec["kind"] == _K_TABLE
        self.has_tables = bool(self.tbl_node.any())
        self.thr = np.where(leaf | self.tbl_node, np.nan, rec["thr"])
        self.value = np.where(leaf, rec["thr"], 0.0)
        self.view_col = np.where(leaf, 0, rec["vc"]).astype(ip)
        # a table node's column; a compare node's view index taken back to its column
        self.col = (self.view_col % max(nf, 1)).astype(ip)
        self.child = np.empty(2 * rec.size, dtype=ip)  # child[2*i] = left, child[2*i+1] = right
        self.child[0::2] = rec["left"]
        self.child[1::2] = rec["right"]
        self.tbl_off = rec["tbl_off"].astype(ip)
        self.tbl_len = rec["tbl_len"].astype(ip)
        self.tables = np.frombuffer(f.tables, dtype=np.bool_)
        self.cat_ub = np.frombuffer(cat_ub, dtype=np.float64)
        self.has_cat_ub = bool(np.isfinite(self.cat_ub).any())
        # "Doubled" state: a walker holds s = 2*node, and s + go_right indexes the child table
        # directly; per-node arrays are repeated twice so they can be indexed by s as well.
        self.vc2 = np.repeat(self.view_col, 2)
        self.thr2 = np.repeat(self.thr, 2)
        self.child2 = 2 * self.child
        self.value2 = np.repeat(self.value, 2)
        self.roots2 = 2 * self.flat_roots
        self.tbl_nodes = np.flatnonzero(self.tbl_node)
        self.tbl_node2 = np.repeat(self.tbl_node, 2)
        self.is_leaf2 = np.repeat(leaf, 2)
        self._fixed_tables()

    def _fixed_tables(self) -> None:
        """For the level walkers: every table padded to one width W, read with a level code
        carried as a fourth input view (NA -> W-2, outside -> W-1), so a table node costs one
        gather instead of a per-level decode. Skipped when the padded tables would be large."""
        self.fixed_w = 0
        k = self.tbl_nodes.size
        if k == 0:
            return
        W = int(self.tbl_len[self.tbl_nodes].max()) + 2
        if k * W > _FIXED_TABLE_CELLS:
            return
        fixed = np.empty((k, W), dtype=np.bool_)
        trow = np.zeros(self.thr.size, dtype=np.intp)
        for j, node in enumerate(self.tbl_nodes.tolist()):
            off, tl = int(self.tbl_off[node]), int(self.tbl_len[node])
            na, oor = self.tables[off], self.tables[off + 1]
            fixed[j, :tl] = self.tables[off + 2 : off + 2 + tl]
            fixed[j, tl : W - 2] = oor
            fixed[j, W - 2] = na
            fixed[j, W - 1] = oor
            trow[node] = j
        self.fixed = fixed.ravel()
        self.fixed_w = W
        self.trow2 = np.repeat(trow * W, 2)
        # table nodes read the code view (block 3) in the main gather
        self.vc2 = np.where(self.tbl_node2, np.repeat(3 * self.nf + self.col, 2), self.vc2)

    def _views(self, X: np.ndarray):
        """The three compare views, side by side: NaN->-inf, NaN->+inf, is-missing (0/1)."""
        missing = np.isnan(X)
        if self.has_cat_ub:
            with np.errstate(invalid="ignore"):
                missing |= X >= self.cat_ub  # levels beyond the domain are NA (mojo >= 1.2)
        nf = self.nf
        V = np.empty((X.shape[0], 3 * nf), dtype=np.float64)
        V[:, :nf] = X
        V[:, nf : 2 * nf] = X
        if missing.any():
            lo = V[:, :nf]
            hi = V[:, nf : 2 * nf]
            lo[missing] = -np.inf
            hi[missing] = np.inf
        V[:, 2 * nf :] = missing
        codes = None
        if self.has_tables:
            with np.errstate(invalid="ignore"):
                c = np.trunc(np.clip(X, -2.0, 2.0**31))
            c[~np.isfinite(c)] = _OOR_CODE
            codes = c.astype(np.int64)
            codes[codes < 0] = _OOR_CODE
            codes[missing] = _NA_CODE
            if self.fixed_w:
                W = self.fixed_w
                code_view = np.where((codes < 0) | (codes >= W - 2), W - 1, codes)
                code_view[codes == _NA_CODE] = W - 2
                V = np.concatenate([V, code_view.astype(np.float64)], axis=1)
        return V, codes

    def _fixed_decisions(self, s_tb: np.ndarray, x_tb: np.ndarray) -> np.ndarray:
        return self.fixed.take(self.trow2.take(s_tb) + x_tb.astype(np.intp))

    def _table_decisions(self, nodes, rows, codes) -> np.ndarray:
        """go_right for bitset/"stale bitset" nodes: table lookup on the integer level."""
        c = codes[rows, self.col[nodes]]
        tl = self.tbl_len[nodes]
        slot = np.where(c == _NA_CODE, 0, np.where((c < 0) | (c >= tl), 1, c + 2))
        return self.tables[self.tbl_off[nodes] + slot]

    def sums(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        n_tpc, n_groups = self.roots.shape
        T = self.flat_roots.size
        if n == 1 and (T <= _PY_TREES or self.max_depth >= _PY_DEPTH):
            # few or deep trees: plain Python beats NumPy's per-call cost on one row
            return self._row_major_sums(self._walk_python(X), n)
        if n * self.thr.size <= _SMALL_CELLS:  # tiny batch: decide every node once
            return self._row_major_sums(self._walk_small(X), n)
        chunk = max(1, _CHUNK_CELLS // max(T, 1))
        walk = self._walk_deep if self.max_depth > _DEEP else self._walk
        out = np.empty((n, n_tpc))
        for i in range(0, n, chunk):
            part = X[i : i + chunk]
            m = part.shape[0]
            # tree-major walkers: the leaves of tree t for all rows are contiguous
            vals = self.value2.take(walk(part)).reshape(n_tpc, n_groups, m)
            acc = vals[:, 0, :].copy()
            for j in range(1, n_groups):  # float64, in tree order, as genmodel adds them
                acc += vals[:, j, :]
            out[i : i + m] = acc.T
        return out

    def _row_major_sums(self, s: np.ndarray, n: int) -> np.ndarray:
        n_tpc, n_groups = self.roots.shape
        vals = np.take(self.value2, s).reshape(n, n_tpc, n_groups)
        if n_groups == 1:
            return vals[:, :, 0].copy()
        return np.cumsum(vals, axis=2)[:, :, -1]  # strictly sequential, in tree order

    def _walk(self, X: np.ndarray) -> np.ndarray:
        """Level-synchronous walk of every (row, tree); returns the doubled leaf states, tree-major."""
        n = X.shape[0]
        T = self.flat_roots.size
        V, codes = self._views(X)
        Vf = V.ravel()
        M = n * T
        base = np.tile(np.arange(n, dtype=np.intp) * V.shape[1], T)  # walker t*n + row
        s = np.repeat(self.roots2, n)
        idx = np.empty(M, dtype=np.intp)
        x = np.empty(M)
        t = np.empty(M)
        r = np.empty(M, dtype=np.bool_)
        for _ in range(self.max_depth):
            np.take(self.vc2, s, out=idx, mode="clip")
            np.add(idx, base, out=idx)
            np.take(Vf, idx, out=x, mode="clip")
            np.take(self.thr2, s, out=t, mode="clip")
            np.greater_equal(x, t, out=r)
            if self.has_tables:
                tb = np.flatnonzero(self.tbl_node2.take(s))
                if tb.size:
                    if self.fixed_w:
                        r[tb] = self._fixed_decisions(s[tb], x[tb])
                    else:
                        r[tb] = self._table_decisions(s[tb] >> 1, tb % n, codes)
            np.add(s, r, out=s)
            np.take(self.child2, s, out=s, mode="clip")
        return s

    def _walk_deep(self, X: np.ndarray) -> np.ndarray:
        """As ``_walk``, but every other level walkers that reached a leaf are set aside, so deep
        unbalanced trees (DRF/XRT) stop paying for their longest path on every row."""
        n = X.shape[0]
        T = self.flat_roots.size
        V, codes = self._views(X)
        Vf = V.ravel()
        M = n * T
        out = np.empty(M, dtype=np.intp)
        s = np.repeat(self.roots2, n)  # tree-major: walker t*n + row
        base = np.tile(np.arange(n, dtype=np.intp) * V.shape[1], T)
        pos = np.arange(M, dtype=np.intp)
        for level in range(self.max_depth):
            if level >= 3 and level % 2 == 1:
                leaf = self.is_leaf2.take(s)
                if np.count_nonzero(leaf) * 4 > s.size:
                    out[pos[leaf]] = s[leaf]
                    keep = ~leaf
                    s, base, pos = s[keep], base[keep], pos[keep]
                    if s.size == 0:
                        return out
            x = Vf.take(self.vc2.take(s) + base)
            r = x >= self.thr2.take(s)
            if self.has_tables:
                tb = np.flatnonzero(self.tbl_node2.take(s))
                if tb.size:
                    if self.fixed_w:
                        r[tb] = self._fixed_decisions(s[tb], x[tb])
                    else:
                        r[tb] = self._table_decisions(s[tb] >> 1, pos[tb] % n, codes)
            s = self.child2.take(s + r)
        out[pos] = s
        return out

    def _walk_python(self, X: np.ndarray) -> np.ndarray:
        """One row, node by node, with the same decision rules as the vectorised walkers."""
        lists = self.__dict__.get("_lists")
        if lists is None:
            lists = self._lists = (
                self.vc2.tolist(), self.thr2.tolist(), self.child2.tolist(), self.is_leaf2.tolist(),
                self.tbl_node2.tolist(), self.col.tolist(), self.tbl_off.tolist(),
                self.tbl_len.tolist(), self.tables.tolist())
        vc2, thr2, child2, is_leaf2, tbl2, col, tbl_off, tbl_len, tables = lists
        V, codes = self._views(X)
        v = V[0].tolist()
        crow = codes[0].tolist() if codes is not None else None
        out = []
        for s in self.roots2.tolist():
            while not is_leaf2[s]:
                if tbl2[s]:
                    node = s >> 1
                    c = crow[col[node]]
                    slot = 0 if c == _NA_CODE else (1 if c < 0 or c >= tbl_len[node] else c + 2)
                    r = tables[tbl_off[node] + slot]
                else:
                    r = v[vc2[s]] >= thr2[s]
                s = child2[s + r]
            out.append(s)
        return np.array(out, dtype=np.intp)

    def _walk_small(self, X: np.ndarray) -> np.ndarray:
        """For a handful of rows: evaluate every node's test up front, then only follow pointers."""
        n = X.shape[0]
        V, codes = self._views(X)
        if n == 1:
            D = (V.ravel().take(self.vc2) >= self.thr2).reshape(1, -1)
        else:
            D = V[:, self.vc2] >= self.thr2  # (n, 2N): decision of node i at 2i and 2i+1
        if self.tbl_nodes.size:
            k = self.tbl_nodes.size
            nodes = np.tile(self.tbl_nodes, n)
            rows = np.repeat(np.arange(n), k)
            d = self._table_decisions(nodes, rows, codes).reshape(n, k)
            D[:, 2 * self.tbl_nodes] = d
            D[:, 2 * self.tbl_nodes + 1] = d
        Df = D.ravel()
        child2 = self.child2
        if n == 1:
            s = self.roots2
            for _ in range(self.max_depth):
                s = child2.take(s + Df.take(s))
            return s
        s = np.tile(self.roots2, n)
        base = np.repeat(np.arange(n, dtype=np.intp) * D.shape[1], self.flat_roots.size)
        for _ in range(self.max_depth):
            s = child2.take(s + Df.take(s + base))
        return s


def _new_codes(version: float) -> bool:
    """MOJO >= 1.2: bitsets give their size in bits, and levels past the domain are NA."""
    return version >= 1.2 or version not in (1.0, 1.1)


def load_forest(archive, info, n_tpc: int, n_groups: int) -> Forest:
    """Read ``trees/tCC_GGG.bin`` for every class and group of a tree model, and check each one."""
    nf = info.n_features
    cat_lens = [None if d is None else len(d) for d in info.domains[:nf]]
    parts: list[bytes] = []
    offsets = array("q", [-1] * (n_tpc * n_groups))
    at = 0
    for k in range(n_tpc):
        for g in range(n_groups):
            name = f"trees/t{k:02d}_{g:03d}.bin"
            if archive.exists(name):
                buf = archive.read_bytes(name)
                offsets[k * n_groups + g] = at
                parts.append(buf)
                at += len(buf)
    forest = Forest(b"".join(parts), offsets, n_tpc, n_groups, cat_lens, info.mojo_version,
                    info.source)
    kernels = _compiled.kernels
    if kernels is None:
        forest.records  # noqa: B018 - decoding is the check without the compiled kernels
        return forest
    for (k, g), buf in zip(((k, g) for k in range(n_tpc) for g in range(n_groups)
                            if offsets[k * n_groups + g] >= 0), parts):
        name = f"trees/t{k:02d}_{g:03d}.bin"
        try:
            kernels.tree_check(buf, nf, forest.flags)
        except ValueError as e:
            raise CorruptMojoError(f"{name}: {e}", info.source) from None
        except NotImplementedError as e:
            raise UnsupportedMojoError(f"{name}: {e}", info.source) from None
    return forest
