"""NumPy's (and Java's) float semantics for one Python float, for the one-row scoring path.

Python's ``math`` raises where IEEE arithmetic, NumPy and genmodel's Java give inf or NaN
(``exp`` overflow, ``log(0)``, division by zero), and the ``min``/``max`` builtins drop a NaN that
``np.minimum``/``np.maximum`` (and ``Math.min``/``Math.max``) propagate. These helpers give the
IEEE answers, so both paths score the same.
"""

from __future__ import annotations

import math

INF = math.inf
NAN = math.nan


def exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def log(x: float) -> float:
    if x > 0:
        return math.log(x)
    if x == 0:
        return -INF
    return NAN  # negative or NaN


def div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def power(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except OverflowError:
        return INF if a > 0 or float(b).is_integer() and int(b) % 2 == 0 else -INF
    except ValueError:  # a negative base with a fractional exponent, or 0 to a negative power
        return INF if a == 0 else NAN


def minimum(a: float, b: float) -> float:
    """``np.minimum``: NaN if either is NaN."""
    if a != a or b != b:
        return NAN
    return a if a <= b else b


def maximum(a: float, b: float) -> float:
    """``np.maximum``: NaN if either is NaN."""
    if a != a or b != b:
        return NAN
    return a if a >= b else b


def sum_in_order(values) -> float:
    """Left to right from 0.0, as ``s = zeros(n); s += column`` does for each column."""
    s = 0.0
    for v in values:
        s += v
    return s
