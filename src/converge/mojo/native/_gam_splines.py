"""The spline bases a GAM builds from its raw gam columns at scoring time, over a batch of values
(NumPy) and for one value (plain Python, ``*_row``), in genmodel's order of operations (``GamUtilsCubicRegression``, ``GamUtilsThinPlateRegression``,
``ISplines``/``NBSplinesTypeII``, ``MSplines``/``NBSplinesTypeI``): every sum is accumulated in
Java's order, so the answers are genmodel's to the last bit where the math library allows.
"""

from __future__ import annotations

import math

from .._numpy import numpy_when_used
from . import _scalar

np = numpy_when_used(__name__)


def mult_transposed(a: np.ndarray, bT: np.ndarray, width: int) -> np.ndarray:
    """``ArrayUtils.multArray``: ``out[:, i] = sum_k a[:, k] * bT[i][k]``, summed from 0.0 in k
    order (a BLAS product would sum in another order)."""
    out = np.zeros((a.shape[0], width))
    for k in range(a.shape[1]):
        out += a[:, k:k + 1] * bT[None, :width, k]
    return out


def mult_transposed_row(a: list[float], bT: list[list[float]], width: int) -> list[float]:
    """``mult_transposed`` for one row."""
    out = []
    for i in range(width):
        weights, s = bT[i], 0.0
        for k, v in enumerate(a):
            s += v * weights[k]
        out.append(s)
    return out


# -- cubic regression splines (bs=0) ---------------------------------------------------------------
def _locate_bin(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """``GamUtilsCubicRegression.locateBin``: its shortcuts, then its bisection, step by step."""
    last = len(knots) - 1
    found = np.full(x.shape, -1, dtype=np.intp)
    found[x <= knots[0]] = 0
    found[(found < 0) & (x >= knots[last])] = last - 1
    low = np.zeros(x.shape, dtype=np.intp)
    high = np.full(x.shape, last, dtype=np.intp)
    tried = np.full(x.shape, -1, dtype=np.intp)
    open_ = found < 0
    for _ in range(len(knots)):
        if not open_.any():
            break
        tried = np.where(open_, (high + low) // 2, tried)
        k, k1 = knots[tried], knots[np.minimum(tried + 1, last)]
        hit = open_ & (x >= k) & (x < k1)
        found[hit] = tried[hit]
        open_ &= ~hit
        up = open_ & (x > k)
        low = np.where(up, tried, low)
        high = np.where(open_ & ~up & (x < k), tried, high)
    return np.where(found < 0, tried, found)


def _locate_bin_row(x: float, knots: list[float]) -> int:
    last = len(knots) - 1
    if x <= knots[0]:
        return 0
    if x >= knots[last]:
        return last - 1
    low, high, tried = 0, last, -1
    for _ in range(len(knots)):
        tried = (high + low) // 2
        if knots[tried] <= x < knots[tried + 1]:
            return tried
        if x > knots[tried]:
            low = tried
        elif x < knots[tried]:
            high = tried
    return tried


def cubic_regression_row(x: float, knots: list[float], binv_d: list[list[float]]) -> list[float]:
    """``cubic_regression`` for one value."""
    b = _locate_bin_row(x, knots)
    h = knots[b + 1] - knots[b]
    div = _scalar.div  # a repeated knot divides by zero: IEEE's answer, as in NumPy and Java
    t = knots[b + 1] - x
    cm = (div(t * t * t, h) - t * h) / 6.0
    t = x - knots[b]
    cp = (div(t * t * t, h) - t * h) / 6.0
    rows = len(binv_d)
    if b == 0:
        basis = [v * cp for v in binv_d[0]]
    elif b >= rows:
        basis = [v * cm for v in binv_d[b - 1]]
    else:
        basis = [u * cm + v * cp for u, v in zip(binv_d[b - 1], binv_d[b])]
    basis[b] += div(knots[b + 1] - x, h)
    basis[b + 1] += div(x - knots[b], h)
    return basis


def cubic_regression(x: np.ndarray, knots: np.ndarray, binv_d: np.ndarray) -> np.ndarray:
    """``expandOneGamCol``: one column per knot (the F-matrix part, then the linear part)."""
    hj = np.diff(knots)
    b = _locate_bin(x, knots)
    h = hj[b]
    t = knots[b + 1] - x
    c_minus = (t * t * t / h - t * h) / 6.0
    t = x - knots[b]
    c_plus = (t * t * t / h - t * h) / 6.0
    rows = len(binv_d)
    before = binv_d[np.clip(b - 1, 0, rows - 1)]
    here = binv_d[np.clip(b, 0, rows - 1)]
    cm, cp = c_minus[:, None], c_plus[:, None]
    basis = np.where((b == 0)[:, None], here * cp,
                     np.where((b >= rows)[:, None], before * cm, before * cm + here * cp))
    at = np.arange(len(x))
    basis[at, b] += (knots[b + 1] - x) / h
    basis[at, b + 1] += (x - knots[b]) / h
    return basis


# -- thin plate regression splines (bs=1) ----------------------------------------------------------
def _factorial(m: int) -> int:
    """Java's int factorial (32-bit wrap-around included)."""
    prod = 1
    for i in range(1, m + 1):
        prod = (prod * i + 2**31) % 2**32 - 2**31
    return prod


def thin_plate_constant(m: int, d: int) -> float:
    """``calTPConstantTerm``."""
    if d % 2 == 0:
        return math.pow(-1, m + 1 + d / 2.0) / (
            math.pow(2, 2 * m - 1) * math.pow(math.pi, d / 2.0) * _factorial(m - 1)
            * _factorial(m - d // 2))
    return math.pow(-1, m) * m / (_factorial(2 * m) * math.pow(math.pi, (d - 1) / 2.0))


def int_pow(base, exp: int):
    """``intPow`` (an array or a float): repeated multiplication, as genmodel does it to avoid
    ``Math.pow``."""
    if exp == 0:
        return np.ones_like(base) if isinstance(base, np.ndarray) else 1.0
    result = base
    for _ in range(1, exp):
        result = result * base
    return result


def thin_plate_distances(X: np.ndarray, knots: np.ndarray, m: int, constant: float) -> np.ndarray:
    """``calculateDistance``: per knot, ``c * r^(2m-d)`` (times ``log r`` for even d)."""
    d = X.shape[1]
    out = np.empty((X.shape[0], knots.shape[1]))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(knots.shape[1]):
            total = np.zeros(X.shape[0])
            for p in range(d):
                t = X[:, p] - knots[p, k]
                total += t * t
            distance = int_pow(np.sqrt(total), 2 * m - d)
            value = constant * distance
            if d % 2 == 0:
                value = np.where(distance != 0, value * np.log(distance), value)
            out[:, k] = value
    return out


def thin_plate_row(values: list[float], knots: list[list[float]], m: int, constant: float,
                   powers: list[list[int]]) -> tuple[list[float], list[float]]:
    """``thin_plate_distances`` and ``thin_plate_polynomials`` for one row."""
    d = len(values)
    distances = []
    for k in range(len(knots[0])):
        total = 0.0
        for p in range(d):
            t = values[p] - knots[p][k]
            total += t * t
        distance = int_pow(math.sqrt(total), 2 * m - d)
        value = constant * distance
        if d % 2 == 0 and distance != 0:
            value *= _scalar.log(distance)
        distances.append(value)
    polynomials = []
    for basis in powers:
        value = 1.0
        for p in range(d):
            value *= int_pow(values[p], basis[p])
        polynomials.append(value)
    return distances, polynomials


def thin_plate_polynomials(X: np.ndarray, powers: np.ndarray) -> np.ndarray:
    """``calculatePolynomialBasis``: per basis, the product of each column to its power."""
    out = np.empty((X.shape[0], len(powers)))
    with np.errstate(over="ignore", invalid="ignore"):
        for j, basis in enumerate(powers):
            value = np.ones(X.shape[0])
            for p, power in enumerate(basis):
                value = value * int_pow(X[:, p], int(power))
            out[:, j] = value
    return out


# -- I-splines (bs=2) and M-splines (bs=3) ---------------------------------------------------------
def fill_knots(knots: list[float], m: int) -> list[float]:
    """``GamUtilsISplines.fillKnots``: the end knots repeated ``m - 1`` times."""
    ends = max(m - 1, 0)
    return [knots[0]] * ends + list(knots) + [knots[-1]] * (len(knots) + 2 * m - 2 - ends - len(knots))


def extract_knots(index: int, order: int, knots: list[float]) -> list[float]:
    """``extractKnots``: ``order + 1`` knots from ``index``, zero-padded past the end (sic)."""
    picked = knots[index:min(index + order, len(knots) - 1) + 1]
    return picked + [0.0] * (order + 1 - len(picked))


def _inverse(v: float) -> float:
    return 0.0 if v == 0 else 1.0 / v


class _Recursive:
    """One node of genmodel's recursive spline (``BSplineBasis``/``MSplineBasis``): zero outside
    its knots, a leaf value at order 1, else a weighted sum of its two children of order - 1."""

    def __init__(self, index: int, order: int, knots: list[float], m_spline: bool) -> None:
        own = extract_knots(index, order, knots)
        self.low, self.high = own[0], own[-1]
        if order == 1:
            self.children = None
            self.leaf = _inverse(own[1] - own[0]) if m_spline else 1.0
            return
        self.children = (_Recursive(index, order - 1, knots, m_spline),
                         _Recursive(index + 1, order - 1, knots, m_spline))
        self.numerator = (own[0], own[order])
        if m_spline:
            self.weights = (_inverse(own[order] - own[0]),) * 2
            self.constant = order / (order - 1.0)
        else:
            self.weights = (_inverse(own[order - 1] - own[0]), _inverse(own[order] - own[1]))
            self.constant = None

    def evaluate_row(self, x: float) -> float:
        if x < self.low or x >= self.high:
            return 0.0
        if self.children is None:
            return self.leaf
        first, second = self.children
        value = ((x - self.numerator[0]) * self.weights[0] * first.evaluate_row(x)
                 + (self.numerator[1] - x) * self.weights[1] * second.evaluate_row(x))
        return value if self.constant is None else self.constant * value

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        outside = (x < self.low) | (x >= self.high)
        if self.children is None:
            return np.where(outside, 0.0, self.leaf)
        first, second = (c.evaluate(x) for c in self.children)
        with np.errstate(over="ignore", invalid="ignore"):
            value = ((x - self.numerator[0]) * self.weights[0] * first
                     + (self.numerator[1] - x) * self.weights[1] * second)
            if self.constant is not None:
                value = self.constant * value
        return np.where(outside, 0.0, value)


class ISplines:
    """``ISplines``: basis i is 0 below its knots, 1 above, else the sum of the B-splines of
    order + 1 from i + 1 on (stopping at the first not yet begun)."""

    def __init__(self, order: int, knots: list[float]) -> None:
        self.order = order
        own_knots = fill_knots(knots, order)
        self.count = len(knots) + order - 2
        self.bounds = [extract_knots(i, order, own_knots) for i in range(self.count)]
        b_knots = fill_knots(knots, order + 1)
        self.b_order = order + 1
        self.b_splines = [_Recursive(i, order + 1, b_knots, m_spline=False)
                          for i in range(len(knots) + order - 1)]
        self.b_bounds = [extract_knots(i, order + 1, b_knots) for i in range(len(self.b_splines))]

    def basis(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), self.count))
        b_values = [b.evaluate(x) for b in self.b_splines]
        for i, own in enumerate(self.bounds):
            total = np.zeros(len(x))
            going = np.ones(len(x), dtype=bool)
            for j in range(i + 1, len(self.b_splines)):
                low, high = self.b_bounds[j][0], self.b_bounds[j][self.b_order]
                going &= ~(x < low)
                total += np.where(going, np.where(x >= high, 1.0, b_values[j]), 0.0)
            out[:, i] = np.where(x < own[0], 0.0, np.where(x >= own[self.order], 1.0, total))
        return out

    def basis_row(self, x: float) -> list[float]:
        out = []
        for i, own in enumerate(self.bounds):
            if x < own[0]:
                out.append(0.0)
            elif x >= own[self.order]:
                out.append(1.0)
            else:
                total = 0.0
                for j in range(i + 1, len(self.b_splines)):
                    bounds = self.b_bounds[j]
                    if x < bounds[0]:
                        break
                    total += 1.0 if x >= bounds[self.b_order] else self.b_splines[j].evaluate_row(x)
                out.append(total)
        return out


class MSplines:
    """``MSplines``: basis i is its M-spline inside its knots, 0 elsewhere."""

    def __init__(self, order: int, knots: list[float]) -> None:
        self.order = order
        own_knots = fill_knots(knots, order)
        self.count = len(knots) + order - 2
        self.splines = [_Recursive(i, order, own_knots, m_spline=True) for i in range(self.count)]
        self.bounds = [extract_knots(i, order, own_knots) for i in range(self.count)]

    def basis(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), self.count))
        for i, (spline, own) in enumerate(zip(self.splines, self.bounds)):
            inside = (x >= own[0]) & (x < own[self.order])
            out[:, i] = np.where(inside, spline.evaluate(x), 0.0)
        return out

    def basis_row(self, x: float) -> list[float]:
        return [spline.evaluate_row(x) if own[0] <= x < own[self.order] else 0.0
                for spline, own in zip(self.splines, self.bounds)]
