"""GLRM's starting points: ``java.util.Random.nextGaussian`` and fdlibm's ``StrictMath.log``,
reproduced bit for bit; the expected numbers come from the JVM itself."""

from __future__ import annotations

import math
import random

import pytest

from converge.mojo.native._javarandom import JavaRandom, strict_log


@pytest.fixture(scope="module")
def jvm():
    from converge.mojo.backends.genmodel import _jvm

    return _jvm()


def test_strict_log_matches_java(jvm):
    strict = jvm.JClass("java.lang.StrictMath")
    rng = random.Random(5)
    values = [rng.random() for _ in range(3000)]  # nextGaussian takes the log of (0, 1)
    values += [rng.uniform(0, 1e6) for _ in range(500)]
    values += [5e-324, 1e-310, 2.2250738585072014e-308, 1.0, 1.0 + 2**-52, 1.0 - 2**-53,
               0.0, -1.0, math.inf, math.nan]
    for v in values:
        want = float(strict.log(v))
        got = strict_log(v)
        assert got == want or (math.isnan(got) and math.isnan(want)), v


@pytest.mark.parametrize("seed", [0, 1, 42, -7, 2**40 + 3, -(2**62)])
def test_gaussians_match_java(jvm, seed):
    java = jvm.JClass("java.util.Random")(jvm.JLong(seed))
    mine = JavaRandom(seed)
    for _ in range(200):
        assert mine.next_gaussian() == float(java.nextGaussian())


@pytest.mark.parametrize("seed", [0, 3, -11, 2**40 + 5])
def test_bounded_ints_match_java_between_gaussians(jvm, seed):
    """GLRM's OneSparse prox breaks ties with ``nextInt(n)`` on the Random that drew the start."""
    java = jvm.JClass("java.util.Random")(jvm.JLong(seed))
    mine = JavaRandom(seed)
    for bound in [1, 2, 3, 5, 7, 8, 1000, 2**30 + 1, 2**31 - 1] * 20:
        assert mine.next_gaussian() == float(java.nextGaussian())
        assert mine.next_int(bound) == int(java.nextInt(bound)), bound
