"""SHAP contributions and leaf assignments of the conformance corpus's tree models against genmodel's own
``predictContributions`` (``expected_contributions.csv``, written by GenmodelApi.java): same
column names (each feature, then ``BiasTerm``), every value bit for bit (genmodel computes them
in float32; so does converge, in C and in the plain-Python fallback). Also: after a pickle round
trip (how a parsed model reaches the serving process), through the genmodel backend (its JVM's
``EasyPredictModelWrapper``), and models without contributions refuse clearly."""

from __future__ import annotations

import csv
import math
import pickle

import pytest

from converge.checkout import CONFORMANCE, CORPUS
from converge.mojo import UnsupportedMojoError, load_mojo

CASES = sorted(p.parent.name for p in CONFORMANCE.glob("*/expected_contributions.csv"))


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _records(case):
    columns, cells = _read(case / "input.csv")
    return [{c: v for c, v in zip(columns, row) if v not in ("", "NA", "N/A", "-")} for row in cells]


def test_cases_cover_gbm_drf_xrt_and_xgboost():
    assert {c.split("_")[1] for c in CASES} >= {"gbm", "drf", "xrt", "xgboost"}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("walker", ["compiled", "python", "compiled after a pickle", "genmodel backend"])
def test_contributions_equal_genmodel(name, walker, monkeypatch):
    from converge.mojo.native import _compiled

    assert _compiled.kernels is not None, "the compiled kernels are not built"
    if walker == "python":
        monkeypatch.setattr(_compiled, "kernels", None)
    via_pickle = walker.endswith("pickle")
    case = CONFORMANCE / name
    header, expected = _read(case / "expected_contributions.csv")
    model = load_mojo(case / "model.zip", backend="genmodel" if walker == "genmodel backend" else "native")
    if via_pickle:
        model = pickle.loads(pickle.dumps(model))
    assert model.contribution_names == header
    got = model.contributions(_records(case))
    assert len(got) == len(expected)
    for i, (answer, want) in enumerate(zip(got, expected)):
        for column, cell in zip(header, want):
            value = float.fromhex(cell) if cell != "NA" else math.nan
            assert answer[column] == value or (math.isnan(value) and math.isnan(answer[column])), (
                f"{name} row {i} {column}: {answer[column]!r} != genmodel's {value!r}")


@pytest.mark.parametrize("backend", ["native", "genmodel"])
def test_models_without_contributions_say_so(backend):
    glm = load_mojo(CONFORMANCE / "glm_binomial_logit" / "model.zip", backend=backend)
    with pytest.raises(UnsupportedMojoError, match="GBM, DRF, XRT and XGBoost|DRF, GBM, or XGBoost"):
        glm.contributions([{"x1": 1.0}])
    with pytest.raises(UnsupportedMojoError):
        glm.leaf_assignment([{"x1": 1.0}])
    multinomial = load_mojo(CORPUS / "multinomial.zip", backend=backend)
    with pytest.raises(UnsupportedMojoError, match="multinomial"):
        multinomial.contributions([{"x1": 1.0}])


LEAF_CASES = sorted(p.parent.name for p in CONFORMANCE.glob("*/expected_leaves.csv"))


def test_leaf_cases_cover_a_multinomial():
    assert any("multinomial" in c for c in LEAF_CASES) and len(LEAF_CASES) >= 5


@pytest.mark.parametrize("name", LEAF_CASES)
@pytest.mark.parametrize("backend", ["native", "genmodel"])
def test_leaf_assignment_equals_predict_csv(name, backend):
    case = CONFORMANCE / name
    header, expected = _read(case / "expected_leaves.csv")
    model = load_mojo(case / "model.zip", backend=backend)
    if backend == "native":  # as a parsed model reaches the serving process
        model = pickle.loads(pickle.dumps(model))
    got = model.leaf_assignment(_records(case))
    assert len(got) == len(expected)
    for i, (answer, want) in enumerate(zip(got, expected)):
        assert list(answer) == header, name
        assert list(answer.values()) == want, f"{name} row {i}"


@pytest.mark.parametrize("name", LEAF_CASES)
@pytest.mark.parametrize("backend", ["native", "genmodel"])
def test_leaf_node_ids_equal_genmodel(name, backend):
    case = CONFORMANCE / name
    header, expected = _read(case / "expected_leaf_ids.csv")
    model = load_mojo(case / "model.zip", backend=backend)
    got = model.leaf_assignment(_records(case), node_ids=True)
    assert [list(answer) for answer in got] == [header] * len(expected)
    assert [[str(v) for v in answer.values()] for answer in got] == expected, name
