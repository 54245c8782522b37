"""GLRM's regularizers for one factor (``project``, ``rproxgrad``, ``regularize``) against
genmodel's own ``GlrmRegularizer`` in the JVM, on vectors with ties (which draw from the row's
Random), negatives, zeros and NaN: the corpus rows rarely meet ties."""

from __future__ import annotations

import math

import pytest

from converge.mojo.native._javarandom import JavaRandom
from converge.mojo.native.glrm import project_row, prox_row, regularize_row

REGULARIZERS = ["None", "Quadratic", "L2", "L1", "NonNegative", "OneSparse", "UnitOneSparse",
                "Simplex"]
VECTORS = [
    [0.3, -1.2, 0.7], [0.5, 0.5, 0.5, 0.5], [2.0, 2.0, -1.0, 2.0], [0.0, 0.0, 0.0],
    [-0.4, -0.4, -0.9], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.25, float("nan"), 0.25],
    [1e-300, 5e300, -5e300, 5e300], [0.1] * 7,
]


@pytest.fixture(scope="module")
def jvm():
    from converge.mojo.backends.genmodel import _jvm

    return _jvm()


def _same(got: list[float], want) -> bool:
    want = [float(v) for v in want]
    return len(got) == len(want) and all(
        g == w or (math.isnan(g) and math.isnan(w)) for g, w in zip(got, want))


@pytest.mark.parametrize("name", REGULARIZERS)
def test_one_factor_regularizers_match_genmodel(jvm, name):
    regularizer = jvm.JClass("hex.genmodel.algos.glrm.GlrmRegularizer").valueOf(name)
    java_random = jvm.JClass("java.util.Random")
    doubles = jvm.JArray(jvm.JDouble)
    for seed, u in enumerate(VECTORS):
        for delta in (0.0, 0.3, 1.0):
            java, mine = java_random(jvm.JLong(seed)), JavaRandom(seed)
            want = regularizer.rproxgrad(doubles(u), delta, java)
            got = prox_row(name, list(u), delta, mine)
            assert _same(got, want), (name, u, delta, got, list(want))
            # the same Random goes on to the next draw: both consumed the same numbers
            assert mine.next_int(1000) == int(java.nextInt(1000)), (name, u, delta)
        java, mine = java_random(jvm.JLong(seed)), JavaRandom(seed)
        assert _same(project_row(name, list(u), mine), regularizer.project(doubles(u), java)), (name, u)
        want = float(regularizer.regularize(doubles(u)))
        got = regularize_row(name, list(u))
        assert got == want or (math.isnan(got) and math.isnan(want)), (name, u, got, want)
