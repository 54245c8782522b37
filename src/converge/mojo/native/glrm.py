"""GLRM: each row's factor ``x`` found by genmodel's own proximal gradient descent.

``GlrmMojoModel.score0`` starts ``x`` from ``new Random(seed + n).nextGaussian()`` where ``n``
counts the rows the loaded model has scored, so an answer depends on the rows scored before it:
the scorer keeps that counter, and a batch takes consecutive numbers in row order. The descent
(ten step sizes tried per iteration, at most 100 iterations) runs row by row in the compiled
kernel (``glrm_row``), for batches too; without it, in plain Python for one row and small batches
and in NumPy for all rows of a larger batch at once, each row with its own stopping point. The
constraint regularizers (OneSparse, UnitOneSparse, Simplex) stay in plain Python. Every path adds
in genmodel's order, so the factors come out bit for bit. genmodel's
quirk of not advancing to the next categorical block of the archetypes after a missing
categorical value is kept.
"""

from __future__ import annotations

import math
import struct
import sys
import threading
from array import array

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from . import _compiled, _scalar
from ._base import NativeScorer
from ._javarandom import JavaRandom

np = numpy_when_used(__name__)

_DOUBLE_MAX = sys.float_info.max
_ITERATIONS = 100
#: batches up to this size take the one-row path (below it NumPy's per-call cost, paid for up to
#: 100 iterations, outweighs scoring the rows one by one: 50 rows 3x faster, 200 rows 1.6x slower)
_FEW_ROWS = 100
_ACCURACY = 1e-10
_ALPHAS = [0.5**i for i in range(1, 11)]
_NUMERIC_LOSSES = ("Quadratic", "Absolute", "Huber", "Poisson", "Logistic", "Hinge")
_CATEGORICAL_LOSSES = ("Categorical", "Ordinal")
_REGULARIZERS = ("None", "Quadratic", "L2", "L1", "NonNegative", "OneSparse", "UnitOneSparse",
                 "Simplex")
#: regularizers that draw from the row's Random or sort: every row takes the one-row path
_PER_ROW = ("OneSparse", "UnitOneSparse", "Simplex")
#: the compiled descent's codes (``_kernels.c: glrm_row``)
_KERNEL_LOSSES = {"Quadratic": 0, "Absolute": 1, "Huber": 2, "Poisson": 3, "Logistic": 4, "Hinge": 5,
                  "Categorical": 0, "Ordinal": 1}
_KERNEL_REGULARIZERS = {"None": 0, "Quadratic": 1, "L2": 2, "L1": 3, "NonNegative": 4}


def _loss(name: str, u, a):
    if name == "Quadratic":
        return (u - a) * (u - a)
    if name == "Absolute":
        return np.abs(u - a)
    if name == "Huber":
        x = u - a
        return np.where(x > 1, x - 0.5, np.where(x < -1, -x - 0.5, 0.5 * x * x))
    if name == "Poisson":
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = np.where(a == 0, 0.0, -a * u + a * np.log(a) - a)
        return np.exp(u) + rest
    if name == "Logistic":
        return np.log(1 + np.exp((1 - 2 * a) * u))
    return np.maximum(1 + (1 - 2 * a) * u, 0)  # Hinge


def _grad(name: str, u, a):
    if name == "Quadratic":
        return 2 * (u - a)
    if name == "Absolute":
        return np.sign(u - a)
    if name == "Huber":
        x = u - a
        return np.where(x > 1, 1.0, np.where(x < -1, -1.0, x))
    if name == "Poisson":
        return np.exp(u) - a
    s = 1 - 2 * a
    if name == "Logistic":
        return s / (1 + np.exp(-s * u))
    return np.where(1 + s * u > 0, s, 0.0)  # Hinge


def _dot(x: list[float], col: tuple) -> float:
    """``x * y_j`` summed from 0 in factor order, as genmodel does (not ``sum()``, which may
    compensate rounding)."""
    p = 0.0
    for u, v in zip(x, col):
        p += u * v
    return p


def _positive(t: float) -> float:
    """``Math.max(t, 0)``: NaN stays NaN, -0.0 becomes 0.0."""
    return t if t > 0 or t != t else 0.0


def _loss_row(name: str, u: float, a: float) -> float:
    """``GlrmLoss.loss`` for one value (Java's ``Math`` semantics: inf and NaN, no exceptions)."""
    if name == "Quadratic":
        return (u - a) * (u - a)
    if name == "Absolute":
        return abs(u - a)
    if name == "Huber":
        x = u - a
        return x - 0.5 if x > 1 else -x - 0.5 if x < -1 else 0.5 * x * x
    if name == "Poisson":
        return _scalar.exp(u) + (0 if a == 0 else -a * u + a * _scalar.log(a) - a)
    if name == "Logistic":
        return _scalar.log(1 + _scalar.exp((1 - 2 * a) * u))
    return _positive(1 + (1 - 2 * a) * u)  # Hinge


def _grad_row(name: str, u: float, a: float) -> float:
    if name == "Quadratic":
        return 2 * (u - a)
    if name == "Absolute":
        d = u - a
        return d if d != d or d == 0 else math.copysign(1.0, d)
    if name == "Huber":
        x = u - a
        return 1.0 if x > 1 else -1.0 if x < -1 else x
    if name == "Poisson":
        return _scalar.exp(u) - a
    s = 1 - 2 * a
    if name == "Logistic":
        return _scalar.div(s, 1 + _scalar.exp(-s * u))
    return s if 1 + s * u > 0 else 0.0  # Hinge


def _max_index(u: list[float], rnd: JavaRandom) -> int:
    """``ArrayUtils.maxIndex(from, rand)``: ties drawn as a one-item reservoir sample."""
    result, count = 0, 0
    for i in range(1, len(u)):
        if u[i] > u[result]:
            result, count = i, 1
        elif u[i] == u[result]:
            count += 1
            if rnd.next_int(count) == 0:
                result = i
    return result


def _simplex_projection(u: list[float]) -> list[float]:
    """``Simplex.rproxgrad`` (Chen and Ye): sort by insertion as genmodel does, then the first
    threshold from the top that clears the next value down."""
    n = len(u)
    idx = list(range(n))
    for i in range(n):
        j = i
        while j > 0 and u[idx[j - 1]] > u[idx[j]]:
            idx[j], idx[j - 1] = idx[j - 1], idx[j]
            j -= 1
    csum = [0.0] * n
    csum[n - 1] = u[idx[n - 1]]
    for i in range(n - 2, -1, -1):
        csum[i] = csum[i + 1] + u[idx[i]]
    t = (csum[0] - 1) / n
    for i in range(n - 1, 0, -1):
        tmp = (csum[i] - 1) / (n - i)
        if tmp >= u[idx[i - 1]]:
            t = tmp
            break
    return [_positive(v - t) for v in u]


def _indicator(reg: str, x: list[float]) -> float:
    """``regularize`` of the constraint regularizers: 0 inside their set, infinity outside."""
    if reg == "UnitOneSparse":
        ones = sum(1 for v in x if v == 1)
        zeros = sum(1 for v in x if v == 0)
        return 0.0 if ones == 1 and ones + zeros == len(x) else math.inf
    if any(v < 0 for v in x):
        return math.inf
    if reg == "OneSparse":
        return 0.0 if sum(1 for v in x if v > 0) == 1 else math.inf
    total = absolute = 0.0
    for v in x:
        total += v
        absolute += abs(v)
    close = abs(total - 1.0) <= (len(x) - 1) * math.ulp(total) * absolute
    return 0.0 if close else math.inf


def _impute_number(loss: str, u: float) -> float:
    """``GlrmLoss.impute``."""
    if loss == "Poisson":
        return _scalar.exp(u)
    if loss in ("Logistic", "Hinge"):
        return 1.0 if u > 0 else 0.0
    return u


def _impute_level(loss: str, u: list[float]) -> int:
    """``GlrmLoss.mimpute``: Categorical the first largest, Ordinal the cheapest cut."""
    if loss == "Categorical":
        best = 0
        for i in range(1, len(u)):
            if u[i] > u[best]:
                best = i
        return best
    total = best_loss = float(len(u) - 1)
    best = 0
    for a in range(1, len(u)):
        total -= min(1.0, u[a - 1]) if u[a - 1] == u[a - 1] else u[a - 1]  # Math.min: NaN wins
        if total < best_loss:
            best_loss, best = total, a
    return best


def _multi_loss_row(name: str, u: list[float], a: int) -> float:
    s = 0.0
    if name == "Categorical":
        for v in u:
            s += _positive(1 + v)
        return s + (_positive(1 - u[a]) - _positive(1 + u[a]))
    for i in range(len(u) - 1):  # Ordinal
        s += _positive(1 - u[i]) if a > i else 1
    return s


def _multi_grad_row(name: str, u: list[float], a: int) -> list[float]:
    if name == "Categorical":
        g = [1.0 if 1 + v > 0 else 0.0 for v in u]
        g[a] = -1.0 if 1 - u[a] > 0 else 0.0
        return g
    return [-1.0 if a > i and 1 - u[i] > 0 else 0.0 for i in range(len(u) - 1)] + [0.0]


def _multi_loss(name: str, block, a):
    """``mloss`` for every row: ``block`` holds a categorical column's per-level products, ``a``
    the levels."""
    n, levels = block.shape
    s = np.zeros(n)
    if name == "Categorical":
        for lv in range(levels):
            s = s + np.maximum(1 + block[:, lv], 0)
        ua = block[np.arange(n), a]
        return s + (np.maximum(1 - ua, 0) - np.maximum(1 + ua, 0))
    for i in range(levels - 1):  # Ordinal
        s = s + np.where(a > i, np.maximum(1 - block[:, i], 0), 1.0)
    return s


def _multi_grad(name: str, block, a):
    n, levels = block.shape
    if name == "Categorical":
        g = np.where(1 + block > 0, 1.0, 0.0)
        rows = np.arange(n)
        g[rows, a] = np.where(1 - block[rows, a] > 0, -1.0, 0.0)
        return g
    g = np.zeros((n, levels))
    for i in range(levels - 1):  # Ordinal
        g[:, i] = np.where((a > i) & (1 - block[:, i] > 0), -1.0, 0.0)
    return g


class _Batch:
    """What stays fixed while a batch's factors are fitted: per row, which columns are present,
    the levels and standardised numbers, and the archetype values each of its products reads
    (``Y[k]`` at the row's own places: they shift after a missing categorical, as in genmodel)."""

    def __init__(self, scorer: GlrmScorer, A) -> None:
        n = A.shape[0]
        ncats = scorer.ncats
        self.present = ~np.isnan(A)
        offset = np.zeros(n, dtype=np.intp)
        places = []
        for j in range(ncats):
            places += [offset + lv for lv in range(scorer.levels[j])]
            offset = np.where(self.present[:, j], offset + scorer.levels[j], offset)
        places += [offset + js for js in range(scorer.nnums)]
        Y = np.asarray(scorer.Y, dtype=np.float64)
        C = np.minimum(np.stack(places, axis=1), Y.shape[1] - 1) if places else np.zeros((n, 0), np.intp)
        self.YC = Y[:, C]  # (factors, rows, products)
        self.level = np.where(self.present[:, :ncats], A[:, :ncats], 0).astype(np.intp)
        self.value = (A[:, ncats:] - np.asarray(scorer.sub[: scorer.nnums])) * np.asarray(scorer.mul[: scorer.nnums])

    def take(self, idx) -> _Batch:
        part = object.__new__(_Batch)
        part.present, part.YC = self.present[idx], self.YC[:, idx]
        part.level, part.value = self.level[idx], self.value[idx]
        return part

    def products(self, x):
        """``x * Y_j`` for every column a row reads, summed from 0 in factor order."""
        P = np.zeros(self.YC.shape[1:])
        for k in range(self.YC.shape[0]):
            P = P + x[:, k : k + 1] * self.YC[k]
        return P


def project_row(reg: str, x: list[float], rnd: JavaRandom) -> list[float]:
    """``GlrmRegularizer.project`` for one factor."""
    if reg == "NonNegative":
        return [_positive(v) for v in x]
    if reg in ("OneSparse", "UnitOneSparse") or reg == "Simplex" and regularize_row(reg, x) != 0:
        return prox_row(reg, x, 1.0, rnd)
    return x

def prox_row(reg: str, u: list[float], delta: float, rnd: JavaRandom) -> list[float]:
    """``GlrmRegularizer.rproxgrad`` for one factor (``rnd``: the row's Random)."""
    if reg == "None" or delta == 0:
        return u
    if reg == "Quadratic":
        f = 1 / (1 + 2 * delta)
        return [v * f for v in u]
    if reg == "L2":
        norm2 = 0.0
        for v in u:
            norm2 += v * v
        weight = 1 - _scalar.div(delta, math.sqrt(norm2))
        return [0.0] * len(u) if weight < 0 else [weight * v for v in u]
    if reg == "L1":
        return [_positive(v - delta) + _scalar.minimum(v + delta, 0.0) for v in u]
    if reg in ("OneSparse", "UnitOneSparse"):
        v = [0.0] * len(u)
        at = _max_index(u, rnd)
        v[at] = 1.0 if reg == "UnitOneSparse" else u[at] if u[at] > 0 else 1e-6
        return v
    if reg == "Simplex":
        return _simplex_projection(u)
    return [_positive(v) for v in u]  # NonNegative

def regularize_row(reg: str, x: list[float]) -> float:
    """``GlrmRegularizer.regularize`` for one factor."""
    if reg == "None":
        return 0.0
    if reg == "NonNegative":
        return math.inf if any(v < 0 for v in x) else 0.0
    if reg in ("OneSparse", "UnitOneSparse", "Simplex"):
        return _indicator(reg, x)
    s = 0.0
    for v in x:
        s += abs(v) if reg == "L1" else v * v
    return math.sqrt(s) if reg == "L2" else s


class GlrmScorer(NativeScorer):
    max_version = 1.10

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        g = info.require
        self.ncol_a = int(g("ncolA"))
        self.ncol_x = int(g("ncolX"))
        ncol_y, nrow_y = int(g("ncolY")), int(g("nrowY"))
        self.regularizer = str(g("regularizationX"))
        if self.regularizer not in _REGULARIZERS:
            raise UnsupportedMojoError(f"GLRM regularizer {self.regularizer!r}", info.source)
        self.gamma = float(g("gammaX"))
        self.ncats = int(g("num_categories"))
        self.nnums = int(g("num_numeric"))
        self.sub = [float(v) for v in info.get("norm_sub") or []]
        self.mul = [float(v) for v in info.get("norm_mul") or []]
        self.perm = [int(v) for v in g("cols_permutation")]
        self.levels = [int(v) for v in g("num_levels_per_category")]
        self.losses = [ln.strip() for ln in archive.read_bytes("losses").decode().splitlines() if ln.strip()]
        if info.get("seed") is None:
            raise UnsupportedMojoError("GLRM MOJO without a seed (genmodel seeds from the clock)", info.source)
        self.seed = int(info.get("seed"))
        for j, name in enumerate(self.losses):
            ok = _CATEGORICAL_LOSSES if j < self.ncats else _NUMERIC_LOSSES
            if name.startswith("Periodic("):
                raise UnsupportedMojoError(
                    f"GLRM loss {name!r}: genmodel 3.46.0.11 cannot read it either (no loss of "
                    "that name: the MOJO writes the period into it)", info.source)
            if name not in ok:
                raise UnsupportedMojoError(f"GLRM loss {name!r}", info.source)
        if (len(self.losses) != self.ncol_a or len(self.perm) != self.ncol_a
                or nrow_y != self.ncol_x or len(self.sub) < self.nnums or len(self.mul) < self.nnums):
            raise CorruptMojoError("GLRM sizes do not agree", info.source)
        blob = archive.read_bytes("archetypes")
        if len(blob) < 8 * nrow_y * ncol_y:
            raise CorruptMojoError("GLRM archetypes are shorter than nrowY x ncolY", info.source)
        flat = struct.unpack_from(f">{nrow_y * ncol_y}d", blob)  # a Java ByteBuffer: big-endian
        self.Y = [list(flat[k * ncol_y : (k + 1) * ncol_y]) for k in range(nrow_y)]
        #: archetype columns (one value per factor), for the one-row path
        self.columns = [tuple(self.Y[k][c] for k in range(nrow_y)) for c in range(ncol_y)]
        self._rows_scored = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Pickled without its lock (a loaded model goes from the parser process to the server)."""
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def output_columns(self) -> list[str]:
        return [f"Arch{i + 1}" for i in range(self.ncol_x)]

    # -- the reconstruction (PredictCsv --glrmReconstruct: GlrmMojoModel.impute_data) -----------
    def reconstruction_names(self) -> list[str]:
        return [f"reconstr_{name}" for name in self.info.columns[: self.ncol_a]]

    def reconstruct(self, raw) -> list[list[float]]:
        """Each row's factor (scored as by ``score``, the row counter advancing) times the
        archetypes, back in the input's columns: a categorical's imputed level index, a number
        imputed by its loss and, with ``reverse_transform``, unstandardised."""
        offsets = [int(v) for v in self.info.require("catOffsets")]
        unscale = bool(self.info.get("reverse_transform", False))
        out = []
        for x in self.score(raw, None).tolist():
            row = [0.0] * self.ncol_a
            for d in range(self.ncats):
                block = [_dot(x, self.columns[offsets[d] + level]) for level in range(self.levels[d])]
                row[self.perm[d]] = float(_impute_level(self.losses[d], block))
            for d in range(self.ncats, self.ncol_a):
                ds = d - self.ncats
                value = _impute_number(self.losses[d], _dot(x, self.columns[offsets[-1] + ds]))
                if unscale:
                    value = _scalar.div(value, self.mul[ds]) + self.sub[ds]
                row[self.perm[d]] = value
            out.append(row)
        return out

    def _randoms(self, n: int) -> list[JavaRandom]:
        """The Randoms of the next ``n`` rows (``Random(seed + row counter)``)."""
        with self._lock:
            first = self._rows_scored
            self._rows_scored += n
        return [JavaRandom(self.seed + first + r) for r in range(n)]

    def _start(self, n: int) -> list[list[float]]:
        """Starting factors for the next ``n`` rows."""
        return [[rnd.next_gaussian() for _ in range(self.ncol_x)] for rnd in self._randoms(n)]

    # -- one row, in plain Python (NumPy's per-call cost is most of a one-row descent) -----------
    def rows_without_numpy(self) -> bool:
        return True

    def score_row(self, row, offset):
        a = [row[p] for p in self.perm]
        for j in range(self.ncats):
            if a[j] >= self.levels[j]:
                a[j] = math.nan
        a = self._plan(a)
        [rnd] = self._randoms(1)  # OneSparse's and UnitOneSparse's prox break ties with it too
        x = project_row(self.regularizer, [rnd.next_gaussian() for _ in range(self.ncol_x)], rnd)
        kernels = _compiled.kernels
        if kernels is not None and self.regularizer in _KERNEL_REGULARIZERS:
            return self._descend_compiled(kernels, x, a)
        old = self._objective_row(x, a)
        for _ in range(_ITERATIONS):
            if old == 0:  # genmodel keeps looping, but the factor cannot change any more
                break
            grad = self._gradient_row(x, a)
            scale = 1.0 / old if old > 10 else 1.0
            best, lowest = [0.0] * self.ncol_x, _DOUBLE_MAX  # genmodel's bestX starts at zero
            for alpha0 in _ALPHAS:
                alpha = alpha0 * scale
                xnew = prox_row(self.regularizer, [xk - alpha * gk for xk, gk in zip(x, grad)],
                                alpha * self.gamma, rnd)
                obj = self._objective_row(xnew, a)
                if lowest > obj:
                    best, lowest = xnew, obj
                if obj == 0:
                    break
            if lowest < old:
                x = best
            improvement = 1 - _scalar.div(lowest, old)
            old = lowest
            if improvement < 0 or improvement < _ACCURACY:
                break
        return x

    def _descend_compiled(self, kernels, x: list[float], plan) -> list[float]:
        """The descent of ``score_row`` in the compiled kernel, the same operations in order."""
        cats, nums = plan
        factor = array("d", x)
        kernels.glrm_row(
            factor, self.ncol_x,
            array("i", [_KERNEL_LOSSES[loss] for loss, _c, _l in cats]),
            array("i", [level for _loss, _c, level in cats]),
            array("i", [len(cols) for _loss, cols, _l in cats]),
            array("d", [v for _loss, cols, _l in cats for col in cols for v in col]),
            array("i", [_KERNEL_LOSSES[loss] for loss, _c, _v in nums]),
            array("d", [value for _loss, _c, value in nums]),
            array("d", [v for _loss, col, _v in nums for v in col]),
            _KERNEL_REGULARIZERS[self.regularizer], self.gamma)  # fmt: skip
        return factor.tolist()

    def _plan(self, a: list[float]):
        """The row's present columns: (loss, archetype columns, level) per categorical and (loss,
        archetype column, standardised value) per number; a missing categorical does not advance
        the place in the archetypes (genmodel's order)."""
        cats, nums, offset = [], [], 0
        for j in range(self.ncats):
            if a[j] == a[j]:
                n = self.levels[j]
                cats.append((self.losses[j], self.columns[offset : offset + n], int(a[j])))
                offset += n
        for j in range(self.ncats, self.ncol_a):
            if a[j] == a[j]:
                js = j - self.ncats
                nums.append((self.losses[j], self.columns[js + offset], (a[j] - self.sub[js]) * self.mul[js]))
        return cats, nums

    def _objective_row(self, x, plan) -> float:
        res = 0.0
        cats, nums = plan
        for loss, cols, level in cats:
            res += _multi_loss_row(loss, [_dot(x, col) for col in cols], level)
        for loss, col, value in nums:
            res += _loss_row(loss, _dot(x, col), value)
        return res + self.gamma * regularize_row(self.regularizer, x)

    def _gradient_row(self, x, plan) -> list[float]:
        grad = [0.0] * self.ncol_x
        cats, nums = plan
        for loss, cols, level in cats:
            g = _multi_grad_row(loss, [_dot(x, col) for col in cols], level)
            for k in range(self.ncol_x):
                acc = grad[k]
                for gc, col in zip(g, cols):
                    acc += gc * col[k]
                grad[k] = acc
        for loss, col, value in nums:
            gl = _grad_row(loss, _dot(x, col), value)
            for k in range(self.ncol_x):
                grad[k] += gl * col[k]
        return grad

    # -- batches, all rows at once in NumPy ----------------------------------------------------
    def score(self, raw, offset):
        n = raw.shape[0]
        compiled = _compiled.kernels is not None and self.regularizer in _KERNEL_REGULARIZERS
        if n <= _FEW_ROWS or compiled or self.regularizer in _PER_ROW:  # compiled: 3x NumPy's rate
            return np.array([self.score_row(r, None) for r in raw.tolist()]).reshape(n, self.ncol_x)
        A = raw[:, self.perm].astype(np.float64)  # getRowData; unseen levels are missing
        for j in range(self.ncats):
            A[:, j] = np.where(A[:, j] >= self.levels[j], np.nan, A[:, j])
        x = np.asarray(self._start(n), dtype=np.float64).reshape(n, self.ncol_x)
        x = self._project(x)
        with np.errstate(all="ignore"):
            return self._descend(x, _Batch(self, A))

    def _project(self, x):
        return np.maximum(x, 0) if self.regularizer == "NonNegative" else x

    def _descend(self, x, batch: _Batch):
        n = x.shape[0]
        old = self._objective(x, batch)
        active = np.ones(n, dtype=bool)
        for _ in range(_ITERATIONS):
            idx = np.flatnonzero(active)
            if not idx.size:
                break
            xa, oa = x[idx], old[idx]
            part = batch if idx.size == n else batch.take(idx)
            grad = self._gradient(xa, part)
            scale = np.where(oa > 10, 1.0 / oa, 1.0)
            best = np.zeros_like(xa)
            lowest = np.full(idx.size, _DOUBLE_MAX)
            stopped = oa == 0  # applyBestAlpha returns 0 at once
            for alpha0 in _ALPHAS:
                alpha = alpha0 * scale
                u = xa - alpha[:, None] * grad
                xnew = self._prox(u, alpha * self.gamma)
                obj = self._objective(xnew, part)
                better = ~stopped & (lowest > obj)
                best[better] = xnew[better]
                lowest = np.where(better, obj, lowest)
                stopped |= obj == 0
            lowest = np.where(oa == 0, 0.0, lowest)
            take = (lowest < oa)[:, None]
            x[idx] = np.where(take, best, xa)
            improvement = 1 - lowest / oa
            done = (improvement < 0) | (improvement < _ACCURACY)
            done |= oa == 0  # the factor cannot change any more (genmodel keeps looping)
            old[idx] = lowest
            active[idx[done]] = False
        return x

    def _prox(self, u, delta):
        reg = self.regularizer
        if reg == "None":
            return u
        d = delta[:, None]
        if reg == "Quadratic":
            v = u * (1 / (1 + 2 * d))
        elif reg == "L2":
            norm2 = np.zeros(u.shape[0])
            for k in range(u.shape[1]):
                norm2 = norm2 + u[:, k] * u[:, k]
            weight = (1 - delta / np.sqrt(norm2))[:, None]
            v = np.where(weight < 0, 0.0, weight * u)
        elif reg == "L1":
            v = np.maximum(u - d, 0) + np.minimum(u + d, 0)
        else:  # NonNegative
            v = np.maximum(u, 0)
        return np.where(d == 0, u, v)

    def _regularize(self, x):
        reg = self.regularizer
        if reg == "None":
            return np.zeros(x.shape[0])
        if reg == "NonNegative":
            return np.where((x < 0).any(axis=1), np.inf, 0.0)
        s = np.zeros(x.shape[0])
        for k in range(x.shape[1]):
            s = s + (np.abs(x[:, k]) if reg == "L1" else x[:, k] * x[:, k])
        return np.sqrt(s) if reg == "L2" else s

    def _objective(self, x, batch: _Batch):
        P = batch.products(x)
        res = np.zeros(x.shape[0])
        place = 0
        for j in range(self.ncats):
            n_levels = self.levels[j]
            loss = _multi_loss(self.losses[j], P[:, place : place + n_levels], batch.level[:, j])
            res = np.where(batch.present[:, j], res + loss, res)
            place += n_levels
        for js in range(self.nnums):
            j = self.ncats + js
            loss = _loss(self.losses[j], P[:, place + js], batch.value[:, js])
            res = np.where(batch.present[:, j], res + loss, res)
        return res + self.gamma * self._regularize(x)

    def _gradient(self, x, batch: _Batch):
        P = batch.products(x)
        grad = np.zeros_like(x)
        place = 0
        for j in range(self.ncats):
            n_levels = self.levels[j]
            g = _multi_grad(self.losses[j], P[:, place : place + n_levels], batch.level[:, j])
            present = batch.present[:, j]
            for k in range(self.ncol_x):
                acc = grad[:, k]
                for lv in range(n_levels):
                    acc = np.where(present, acc + g[:, lv] * batch.YC[k][:, place + lv], acc)
                grad[:, k] = acc
            place += n_levels
        for js in range(self.nnums):
            j = self.ncats + js
            gl = _grad(self.losses[j], P[:, place + js], batch.value[:, js])
            present = batch.present[:, j]
            for k in range(self.ncol_x):
                grad[:, k] = np.where(present, grad[:, k] + gl * batch.YC[k][:, place + js], grad[:, k])
        return grad
