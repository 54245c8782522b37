"""Conformance: the native scorer answers exactly what genmodel's PredictCsv printed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from converge.mojo import load_mojo

# Models whose outputs pass through no exp/log (or only float32 ops genmodel also does in float32)
# must match bit for bit; the others may differ by libm's last ulp (Java's Math.exp vs NumPy).
BIT_EXACT = {"mojo", "glm_model", "regression", "xgboost", "XGBoostWithOffset"}
TOLERANCE = 1e-12


def check_outputs(fixture, model, outputs: dict[str, list]) -> None:
    """Compare every row and column with the expected file; labels must be identical."""
    assert fixture.expected_header == model.output_names
    assert len(outputs["predict"]) == len(fixture.expected)
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
