"""The conformance corpus: every MOJO in ``tests/data/conformance`` scored by the native backend
(no JVM) against genmodel's own ``PredictCsv`` output for the same input (for categories PredictCsv
cannot print, genmodel's ``EasyPredictModelWrapper`` in PredictCsv's format).

Column names identical; labels identical; numbers within 1e-9 relative (most are bit-exact);
missing where genmodel's are missing; no refusals. The input is scored once as a batch, once row
by row on a fresh load, and once as a DataFrame through ``predict`` on another, in file order
(GLRM's answers depend on the rows scored before).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from converge.checkout import CONFORMANCE
from converge.mojo import load_mojo
from converge.mojo.errors import UnsupportedMojoError

RECORDS = {p.parent.name: json.loads(p.read_text()) for p in CONFORMANCE.glob("*/case.json")}
CASES = sorted(n for n, r in RECORDS.items() if not r.get("refused") and not r.get("genmodel_fails"))
#: models H2O exports and genmodel fails to load or score: converge refuses them when loading them
GENMODEL_FAILS = sorted(n for n, r in RECORDS.items() if r.get("genmodel_fails"))
REL = 1e-9


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _number(cell: str) -> float | None:
    """PredictCsv's cell as a number (``Double.toHexString``, decimal, ``NA``); None for a label."""
    if cell == "NA":
        return math.nan
    try:
        return float.fromhex(cell) if "0x" in cell else float(cell.replace("Infinity", "inf"))
    except ValueError:
        return None


def _agree(got, want: str) -> bool:
    expected = _number(want)
    if expected is None or isinstance(got, str):
        return str(got) == want
    if got is None or math.isnan(got):
        return math.isnan(expected)
    if got == expected:
        return True
    return abs(got - expected) <= REL * max(abs(expected), abs(got))


def _check(name: str, header: list[str], got: list[dict], expected: list[list[str]]) -> None:
    assert len(got) == len(expected), f"{name}: {len(got)} answers for {len(expected)} rows"
    for i, (answer, want) in enumerate(zip(got, expected)):
        assert sorted(answer) == sorted(header), f"{name}: columns {list(answer)} != {header}"
        for column, cell in zip(header, want):
            assert _agree(answer[column], cell), (
                f"{name} row {i} {column}: {answer[column]!r} != genmodel's {cell!r}")


def _case(name: str) -> tuple[Path, list[str], list[list[str]], list[str], list[dict]]:
    """The case's folder, genmodel's header and rows, the input's columns and its records (the
    cells PredictCsv leaves out of a row, as missing, left out)."""
    case = CONFORMANCE / name
    header, expected = _read(case / "expected.csv")
    columns, cells = _read(case / "input.csv")
    records = [{c: v for c, v in zip(columns, row) if v not in ("", "NA", "N/A", "-")} for row in cells]
    return case, header, expected, columns, records


def _check_calibrated(name, header, expected, calibrated) -> int:
    """The ``cal_<class>`` columns (PredictCsv --predictCalibrated) against
    ``calibrated_probabilities``; returns where they start."""
    width = header.index(next(h for h in header if h.startswith("cal_")))
    _check(name, header[width:], [{f"cal_{k}": v for k, v in row.items()} for row in calibrated],
           [row[width:] for row in expected])
    return width


def test_the_corpus_is_there():
    assert len(CASES) >= 20, f"only {len(CASES)} conformance cases in {CONFORMANCE}"


@pytest.mark.parametrize("name", CASES)
def test_native_scores_as_genmodel(name):
    case, header, expected, columns, records = _case(name)
    if "--glrmReconstruct" in RECORDS[name].get("predict_csv_args", []):  # Model.reconstruction
        batch = load_mojo(case / "model.zip", backend="native")
        _check(name, header, batch.reconstruction(records), expected)
        one_by_one = load_mojo(case / "model.zip", backend="native")
        _check(name, header, [one_by_one.reconstruction([r])[0] for r in records], expected)
        return
    if "--predictCalibrated" in RECORDS[name].get("predict_csv_args", []):
        calibrated = load_mojo(case / "model.zip", backend="native").calibrated_probabilities(records)
        width = _check_calibrated(name, header, expected, calibrated)
        header, expected = header[:width], [row[:width] for row in expected]

    batch = load_mojo(case / "model.zip", backend="native")
    assert batch.output_names == header
    _check(name, header, batch.predict_records(records), expected)

    one_by_one = load_mojo(case / "model.zip", backend="native")
    _check(name, header, [one_by_one.predict_records([r])[0] for r in records], expected)

    framed = load_mojo(case / "model.zip", backend="native")  # a DataFrame through ``predict``
    answers = framed.predict(pd.DataFrame(records, columns=columns, dtype=object))
    assert list(answers.columns) == header
    _check(name, header, answers.to_dict("records"), expected)


@pytest.mark.parametrize("name", GENMODEL_FAILS)
def test_what_genmodel_fails_to_score_is_refused_with_the_reason(name):
    """genmodel's ``PredictCsv`` failed on these (``case.json``); native says why when loading."""
    with pytest.raises(UnsupportedMojoError, match="genmodel 3.46.0.11 .*(fails|cannot)"):
        load_mojo(CONFORMANCE / name / "model.zip", backend="native")


CALIBRATED = sorted(n for n in CASES if "--predictCalibrated" in RECORDS[n].get("predict_csv_args", []))


@pytest.mark.parametrize("name", CALIBRATED)
def test_calibrated_probabilities_through_the_genmodel_backend(name):
    """genmodel's own wrapper in the JVM gives the same ``cal_`` columns PredictCsv printed."""
    case, header, expected, _columns, records = _case(name)
    got = load_mojo(case / "model.zip", backend="genmodel").calibrated_probabilities(records)
    _check_calibrated(name, header, expected, got)


def test_an_uncalibrated_model_says_so():
    model = load_mojo(CONFORMANCE / "shap_gbm_binomial" / "model.zip", backend="native")
    with pytest.raises(UnsupportedMojoError, match="calibrate_model"):
        model.calibrated_probabilities([{"x1": 1.0}])


def test_a_model_without_a_reconstruction_says_so():
    model = load_mojo(CONFORMANCE / "shap_gbm_binomial" / "model.zip", backend="native")
    with pytest.raises(UnsupportedMojoError, match="GLRM"):
        model.reconstruction([{"x1": 1.0}])
