"""Models trained on encoded categoricals, through the entry points the corpus test does not
take: a matrix of level codes (``predict_numpy``) and strict unknown levels. Answers come from
genmodel: its ``PredictCsv`` output in the corpus, or genmodel run directly (``converge.reference``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from converge.mojo import InvalidInputError, load_mojo
from converge.reference import GenmodelRefused, GenmodelReference

CORPUS = Path(__file__).resolve().parents[1] / "data" / "conformance"
#: one per encoding and algorithm family (Eigen, EnumLimited, one-hot, binary, label, offset)
CASES = ["gbm_eigen_multinomial", "gbm_enum_limited_binomial", "drf_one_hot_explicit_regression",
         "deeplearning_binary_binomial", "deeplearning_label_encoder_regression",
         "gbm_eigen_offset"]


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _number(cell: str) -> float:
    return math.nan if cell == "NA" else float.fromhex(cell) if "0x" in cell else float(cell)


@pytest.mark.parametrize("name", CASES)
def test_level_codes_score_as_genmodel_scored_the_levels(name):
    """Rows whose every level is known, given as codes in ``feature_names`` order, answer what
    PredictCsv answered for the same rows given as text."""
    case = CORPUS / name
    model = load_mojo(case / "model.zip", backend="native")
    columns, cells = _read(case / "input.csv")
    header, expected = _read(case / "expected.csv")
    X, kept, offsets = [], [], []
    for r, row in enumerate(cells):
        cell = dict(zip(columns, row))
        codes = []
        for feature in model.feature_names:
            domain, text = model.domains[feature], cell.get(feature, "")
            if text == "":
                codes.append(math.nan)
            elif domain is None:
                codes.append(float(text))
            elif text in domain:
                codes.append(float(domain.index(text)))
            else:  # an unseen level has no code
                break
        else:
            X.append(codes)
            kept.append(r)
            offsets.append(float(cell.get(model.offset_column) or 0.0))
    assert len(kept) >= 50, f"{name}: only {len(kept)} rows with known levels"
    offset = np.array(offsets) if model.offset_column else None
    got = model.predict_numpy(np.array(X), offset)
    for i, r in enumerate(kept):
        want = expected[r]
        if model.classes is not None:
            assert model.classes[int(got[i, 0])] == want[0], f"{name} row {r}"
            numbers, wanted = got[i, 1:], [_number(c) for c in want[1:]]
        else:
            numbers, wanted = got[i, :1], [_number(want[0])]
        np.testing.assert_allclose(numbers, wanted, rtol=1e-9, atol=0, err_msg=f"{name} row {r}")


@pytest.mark.parametrize("name", CASES)
def test_a_code_outside_the_domain_is_refused_naming_the_column(name):
    model = load_mojo(CORPUS / name / "model.zip", backend="native")
    i, column = next((i, c) for i, c in enumerate(model.feature_names) if model.domains[c])
    X = np.zeros((1, len(model.feature_names)))
    X[0, i] = len(model.domains[column])
    with pytest.raises(InvalidInputError, match=column):
        model.predict_numpy(X)


@pytest.mark.parametrize("name", CASES)
def test_strict_unknown_levels_are_refused_by_both_naming_the_column(name):
    path = CORPUS / name / "model.zip"
    model = load_mojo(path, backend="native", unknown_levels="raise")
    reference = GenmodelReference(path, unknown_levels_to_na=False)
    column = next(c for c in model.feature_names if model.domains[c])
    record = {column: "never-seen"}
    with pytest.raises(InvalidInputError, match=column):  # one record: its own path
        model.predict_records([record])
    with pytest.raises(InvalidInputError, match=column):  # a batch
        model.predict_raw([record, record])
    with pytest.raises(GenmodelRefused, match=column):
        reference.raw([record])
    known = {column: model.domains[column][0]}  # and a known level is scored by both alike
    np.testing.assert_allclose(model.predict_raw([known]), reference.raw([known]), rtol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_a_model_pickles_and_scores_the_same(name):
    """Serving receives parsed models as pickles."""
    import pickle

    model = load_mojo(CORPUS / name / "model.zip", backend="native")
    columns, cells = _read(CORPUS / name / "input.csv")
    records = [{c: v for c, v in zip(columns, row) if v} for row in cells]
    before = model.predict_raw(records)
    model.predict_records(records[:1])  # the one-row path has run too
    copy = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own object
    np.testing.assert_array_equal(copy.predict_raw(records), before)
    np.testing.assert_array_equal(copy.predict_raw(records[:1]), before[:1])


@pytest.mark.parametrize("name", CASES)
def test_the_genmodel_backend_takes_the_original_columns(name):
    """The genmodel fallback gives genmodel's wrapper the original columns, which it encodes
    itself: its answers are PredictCsv's (the encoded names would leave every categorical out)."""
    case = CORPUS / name
    model = load_mojo(case / "model.zip", backend="genmodel")
    columns, cells = _read(case / "input.csv")
    header, expected = _read(case / "expected.csv")
    assert model.feature_names == load_mojo(case / "model.zip", backend="native").feature_names
    records = [{c: v for c, v in zip(columns, row) if v} for row in cells]
    for r, (got, want) in enumerate(zip(model.predict_records(records), expected, strict=True)):
        for column, cell in zip(header, want):
            if column == "predict" and model.classes is not None:
                assert got[column] == cell, f"{name} row {r}"
            else:
                assert math.isclose(got[column], _number(cell), rel_tol=1e-9) or (
                    math.isnan(got[column]) and cell == "NA"), f"{name} row {r} {column}"
