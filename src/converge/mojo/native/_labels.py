"""Class labels as genmodel picks them (``GenModel.getPrediction``), ties and priors included."""

from __future__ import annotations

import struct

from .._numpy import numpy_when_used
from ._scalar import sum_in_order

np = numpy_when_used(__name__)

_MASK48 = (1 << 48) - 1
_MULT = 0x5DEECE66D


def _java_random_next_double(seed: int) -> float:
    """``new java.util.Random(seed).nextDouble()``."""
    s = (seed ^ _MULT) & _MASK48
    s = (s * _MULT + 0xB) & _MASK48
    a = s >> (48 - 26)
    s = (s * _MULT + 0xB) & _MASK48
    b = s >> (48 - 27)
    return ((a << 27) + b) * (1.0 / (1 << 53))


def _row_hash(raw_row) -> int:
    """XOR of ``doubleToRawLongBits(d) >> 6`` over the row (signed 64-bit)."""
    n = len(raw_row)
    h = 0
    for bits in struct.unpack(f"<{n}q", struct.pack(f"<{n}d", *raw_row)):
        h ^= bits >> 6
    return h


def _break_tie(p, prior, raw_row) -> int:
    K = len(p)
    ties = [0]
    best, tie_cnt = 0, 0
    for c in range(1, K):
        if p[best] < p[c]:
            best, tie_cnt = c, 0
        elif p[best] == p[c]:
            tie_cnt += 1
            ties.append(c)
    if tie_cnt == 0:
        return best
    h = _row_hash(raw_row)
    if prior is not None:
        s = 0.0
        for i in ties:
            s += prior[i]
        t = _java_random_next_double(h)
        acc = 0.0
        for i in ties:
            acc += prior[i] / s
            if t <= acc:
                return i
    h32 = ((h & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
    idx = abs(h32) % (tie_cnt + 1)
    if h32 < 0:
        idx = -idx
    res = p[best]
    for b in range(K):
        if res == p[b]:
            idx -= 1
            if idx < 0:
                return b
    raise AssertionError("unreachable tie-breaking state")


def multinomial_labels(P: np.ndarray, prior, raw: np.ndarray) -> np.ndarray:
    """Argmax with genmodel's tie-breaking; ``raw`` is the row the model saw (for the hash)."""
    lab = np.argmax(P, axis=1)
    top = P[np.arange(P.shape[0]), lab]
    tied = np.flatnonzero((P == top[:, None]).sum(axis=1) > 1)
    # rows with NaN probabilities: argmax semantics differ; run the exact scalar loop
    nan_rows = np.flatnonzero(np.isnan(P).any(axis=1))
    for i in np.union1d(tied, nan_rows):
        lab[i] = _break_tie(P[i], prior, raw[i])
    return lab


def multinomial_label_row(p: list[float], prior, raw_row: list[float]) -> int:
    """``multinomial_labels`` for one row."""
    top = max(p)
    if p.count(top) > 1 or any(v != v for v in p):
        return _break_tie(p, prior, raw_row)
    return p.index(top)


def correct_row(p: list[float], prior, model_dist) -> list[float]:
    """``correct_probabilities`` for one row."""
    p = [v * (prior[c] / model_dist[c]) if prior[c] != 0 and model_dist[c] != 0 else v
         for c, v in enumerate(p)]
    s = sum_in_order(p)
    return [v / s for v in p] if s > 0 else p


def binomial_labels(p1: np.ndarray, threshold: float) -> np.ndarray:
    return (p1 >= threshold).astype(np.int64)


def correct_probabilities(P: np.ndarray, prior, model_dist) -> np.ndarray:
    """``GenModel.correctProbabilities`` for balance_classes models (in place, row-wise)."""
    K = P.shape[1]
    for c in range(K):
        if prior[c] != 0 and model_dist[c] != 0:
            P[:, c] *= prior[c] / model_dist[c]
    s = np.zeros(P.shape[0])
    for c in range(K):
        s += P[:, c]
    pos = s > 0
    P[pos] /= s[pos, None]
    return P


def labels(P: np.ndarray, info, raw: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Labels for K-class probabilities (columns 0..K-1) using the model's threshold/priors."""
    if P.shape[1] == 2:
        th = info.get("default_threshold", 0.5) if threshold is None else threshold
        return binomial_labels(P[:, 1], float(th))
    return multinomial_labels(P, info.get("prior_class_distrib"), raw)
