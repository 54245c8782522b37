"""``java.util.Random`` and the ``StrictMath.log`` its ``nextGaussian`` uses, bit for bit.

genmodel draws GLRM's starting points from ``new Random(seed).nextGaussian()``; Java's
``StrictMath.log`` is fdlibm's, which rounds differently from the C library's ``log`` for some
inputs (about one in fifteen of those ``nextGaussian`` takes), so it is reproduced here.
"""

from __future__ import annotations

import math
import struct

_MULT = 0x5DEECE66D
_MASK = (1 << 48) - 1
_D = struct.Struct("<d")
_Q = struct.Struct("<Q")

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_TWO54 = 1.80143985094819840000e16
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)


def _words(x: float) -> tuple[int, int]:
    bits = _Q.unpack(_D.pack(x))[0]
    hi = bits >> 32
    return (hi - (1 << 32) if hi & 0x80000000 else hi), bits & 0xFFFFFFFF


def _with_high(x: float, hi: int) -> float:
    return _D.unpack(_Q.pack(((hi & 0xFFFFFFFF) << 32) | (_Q.unpack(_D.pack(x))[0] & 0xFFFFFFFF)))[0]


def strict_log(x: float) -> float:
    """fdlibm's ``__ieee754_log`` (Java's ``StrictMath.log``)."""
    hx, lx = _words(x)
    k = 0
    if hx < 0x00100000:
        if (hx & 0x7FFFFFFF) | lx == 0:
            return -math.inf
        if hx < 0:
            return math.nan
        k -= 54
        x *= _TWO54
        hx = _words(x)[0]
    if hx >= 0x7FF00000:
        return x + x
    k += (hx >> 20) - 1023
    hx &= 0x000FFFFF
    i = (hx + 0x95F64) & 0x100000
    x = _with_high(x, hx | (i ^ 0x3FF00000))
    k += i >> 20
    f = x - 1.0
    dk = float(k)
    if (0x000FFFFF & (2 + hx)) < 3:  # |f| < 2**-20
        if f == 0.0:
            return 0.0 if k == 0 else dk * _LN2_HI + dk * _LN2_LO
        R = f * f * (0.5 - 0.33333333333333333 * f)
        return f - R if k == 0 else dk * _LN2_HI - ((R - dk * _LN2_LO) - f)
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG
    s = f / (2.0 + f)
    z = s * s
    i = hx - 0x6147A
    w = z * z
    j = 0x6B851 - hx
    t1 = w * (lg2 + w * (lg4 + w * lg6))
    t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)))
    i |= j
    R = t2 + t1
    if i > 0:
        hfsq = 0.5 * f * f
        if k == 0:
            return f - (hfsq - s * (hfsq + R))
        return dk * _LN2_HI - ((hfsq - (s * (hfsq + R) + dk * _LN2_LO)) - f)
    if k == 0:
        return f - s * (f - R)
    return dk * _LN2_HI - ((s * (f - R) - dk * _LN2_LO) - f)


class JavaRandom:
    """The 48-bit linear congruential generator of ``java.util.Random``."""

    def __init__(self, seed: int) -> None:
        self.seed = (seed ^ _MULT) & _MASK
        self.next_gaussian_value: float | None = None

    def _next(self, bits: int) -> int:
        self.seed = (self.seed * _MULT + 0xB) & _MASK
        v = self.seed >> (48 - bits)
        return v - (1 << 32) if v & 0x80000000 else v  # Java's (int) cast

    def next_int(self, bound: int) -> int:
        """``nextInt(bound)``, its rejection loop in Java's 32-bit arithmetic."""
        r = self._next(31)
        m = bound - 1
        if bound & m == 0:  # a power of two
            return (bound * r) >> 31
        u = r
        while True:
            r = u % bound
            if ((u - r + m + 2**31) % 2**32) - 2**31 >= 0:  # u - r + m < 0 where int overflows
                return r
            u = self._next(31)

    def next_double(self) -> float:
        return ((self._next(26) << 27) + self._next(27)) * 2.0**-53

    def next_gaussian(self) -> float:
        if self.next_gaussian_value is not None:
            v, self.next_gaussian_value = self.next_gaussian_value, None
            return v
        while True:
            v1 = 2 * self.next_double() - 1
            v2 = 2 * self.next_double() - 1
            s = v1 * v1 + v2 * v2
            if 0 < s < 1:
                break
        multiplier = math.sqrt(-2 * strict_log(s) / s)
        self.next_gaussian_value = v2 * multiplier
        return v1 * multiplier
