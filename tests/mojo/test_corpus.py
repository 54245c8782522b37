"""Conformance: the native scorer answers exactly what genmodel's PredictCsv printed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from converge.mojo import load_mojo
from converge.reference import GenmodelReference

# Models whose outputs pass through no exp/log (or only float32 ops genmodel also does in float32)
# must match bit for bit; the others may differ by libm's last ulp (Java's Math.exp vs NumPy).
BIT_EXACT = {"mojo", "glm_model", "regression", "xgboost", "XGBoostWithOffset"}
TOLERANCE = 1e-12


def check_outputs(fixture, model, outputs: dict[str, list], exact: bool | None = None) -> None:
    """Compare every row and column with the expected file; labels must be identical."""
    assert fixture.expected_header == model.output_names
    assert len(outputs["predict"]) == len(fixture.expected)
    if exact is None:
        exact = fixture.name in BIT_EXACT
    for col in fixture.expected_header:
        got = outputs[col]
        for i in range(len(fixture.expected)):
            want = fixture.expected_value(i, col)
            if isinstance(want, str):
                assert got[i] == want, f"{fixture.name} row {i}: label {got[i]!r} != {want!r}"
                continue
            g = float(got[i])
            if math.isnan(want):
                assert math.isnan(g), f"{fixture.name} row {i} {col}: {g} != NA"
            elif exact:
                assert g == want, f"{fixture.name} row {i} {col}: {g.hex()} != {want.hex()}"
            else:
                assert abs(g - want) <= TOLERANCE, f"{fixture.name} row {i} {col}: {g!r} vs {want!r}"


def test_native_records_match_genmodel(fixture):
    model = load_mojo(fixture.zip_path, backend="native")
    out = model.predict_records(fixture.records())
    check_outputs(fixture, model, {c: [r[c] for r in out] for c in model.output_names})


def test_native_one_row_at_a_time_matches_genmodel(fixture):
    """Single rows take the plain-Python path (no NumPy) wherever the model allows it."""
    model = load_mojo(fixture.zip_path, backend="native")
    from converge.mojo.native import _compiled

    if _compiled.kernels is not None and "xgboost" not in fixture.name.lower():
        assert model.backend.scorer.rows_without_numpy()
    out = [model.predict_records([r])[0] for r in fixture.records()]
    check_outputs(fixture, model, {c: [r[c] for r in out] for c in model.output_names})


def test_native_dataframe_matches_genmodel(fixture):
    pd = pytest.importorskip("pandas")
    model = load_mojo(fixture.zip_path, backend="native")
    df = pd.DataFrame(fixture.records(), columns=fixture.header)
    out = model.predict(df)
    assert list(out.columns) == model.output_names
    check_outputs(fixture, model, {c: out[c].tolist() for c in out.columns})


def test_unpacked_folder_and_bytes_give_the_same_answers(fixture, tmp_path):
    import zipfile

    with zipfile.ZipFile(fixture.zip_path) as z:
        z.extractall(tmp_path)
    recs = fixture.records()[:25]
    a = load_mojo(fixture.zip_path, backend="native").predict_raw(recs)
    b = load_mojo(tmp_path, backend="native").predict_raw(recs)
    c = load_mojo(fixture.zip_path.read_bytes(), backend="native").predict_raw(recs)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.fixture(scope="module")
def genmodel_available():
    from converge.mojo.backends.genmodel import _jvm
    from converge.mojo.errors import BackendUnavailableError

    try:
        _jvm()
    except BackendUnavailableError as e:
        pytest.skip(f"genmodel backend unavailable: {e}")


def test_genmodel_backend_matches_predictcsv(fixture, genmodel_available):
    """The in-process JVM reference prints what PredictCsv printed (same jar, same rules)."""
    model = load_mojo(fixture.zip_path, backend="genmodel")
    assert model.backend.name == "genmodel"
    out = model.predict_records(fixture.records())
    outputs = {c: [r[c] for r in out] for c in model.output_names}
    # same JVM arithmetic as PredictCsv: every fixture must be bit-identical
    check_outputs(fixture, model, outputs, exact=True)


def test_native_equals_genmodel_on_encoded_matrix(fixture, genmodel_available):
    """``predict_numpy`` on level codes: native and genmodel's score0 (run directly) agree."""
    native = load_mojo(fixture.zip_path, backend="native")
    ref = GenmodelReference(fixture.zip_path)
    recs = fixture.records()[:60]
    raw, off = native._schema.encode_records(recs)
    a = native.predict_numpy(raw, off)
    b = ref.score0(raw, off)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a[:, 0], b[:, 0])
    tol = 0 if fixture.name in BIT_EXACT else TOLERANCE
    np.testing.assert_allclose(a[:, 1:], b[:, 1:], rtol=0, atol=tol)


@pytest.mark.parametrize(
    "walker", ["python", "small-single", "small", "level", "deep", "tiny-chunks", "decoded-tables"]
)
def test_every_tree_walker_gives_the_same_answers(fixture, walker, monkeypatch):
    """The NumPy tree walkers (decide-all, level-synchronous, active-set, chunked) are
    interchangeable; the compiled walker is switched off so that they are the ones scoring."""
    from converge.mojo.native import _compiled, _trees

    monkeypatch.setattr(_compiled, "kernels", None)
    settings = {
        "python": {"_PY_TREES": 1 << 30, "_PY_DEPTH": 0},
        "small-single": {"_PY_TREES": 0, "_PY_DEPTH": 1 << 30, "_SMALL_CELLS": 1 << 40},
        "small": {"_PY_TREES": 0, "_PY_DEPTH": 1 << 30, "_SMALL_CELLS": 1 << 40},
        "level": {"_PY_TREES": 0, "_PY_DEPTH": 1 << 30, "_SMALL_CELLS": 0, "_DEEP": 1 << 30},
        "deep": {"_PY_TREES": 0, "_PY_DEPTH": 1 << 30, "_SMALL_CELLS": 0, "_DEEP": 0},
        "tiny-chunks": {"_PY_TREES": 0, "_PY_DEPTH": 1 << 30, "_SMALL_CELLS": 0, "_CHUNK_CELLS": 7},
        "decoded-tables": {"_PY_TREES": 0, "_PY_DEPTH": 1 << 30, "_SMALL_CELLS": 0,
                           "_FIXED_TABLE_CELLS": 0},
    }[walker]
    for name, value in settings.items():
        monkeypatch.setattr(_trees, name, value)
    model = load_mojo(fixture.zip_path, backend="native")
    records = fixture.records()
    if walker in ("python", "small-single"):  # single-row walkers: one row per call
        raw = np.vstack([model.predict_raw([r]) for r in records])
        out = model._to_records(raw)
    else:
        out = model.predict_records(records)
    check_outputs(fixture, model, {c: [r[c] for r in out] for c in model.output_names})
