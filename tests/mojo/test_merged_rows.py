"""A few single-row requests merged by the inline scorer are scored one by one where that is
cheaper (``converge.serving.scoring.ONE_BY_ONE_MAX_ROWS``, ``ONE_CALL_MAX_ROWS`` for a model with a
compiled one-row plan): the answers must still be genmodel's,
row for row, in whatever group size the merge produced."""

from __future__ import annotations

import math

import pytest

from converge.mojo import load_mojo
from converge.serving.scoring import ONE_BY_ONE_MAX_ROWS, ONE_CALL_MAX_ROWS, score_rows

TOLERANCE = 1e-12


@pytest.mark.parametrize(
    "group", [*range(2, ONE_BY_ONE_MAX_ROWS + 2), ONE_CALL_MAX_ROWS, ONE_CALL_MAX_ROWS + 1]
)
def test_merged_groups_score_as_genmodel(fixture, group):
    model = load_mojo(fixture.zip_path, backend="native")
    records = fixture.records()
    got: list[dict] = []
    for start in range(0, len(records), group):
        got += score_rows(model, records[start : start + group])
    assert len(got) == len(fixture.expected)
    for i, row in enumerate(got):
        for col in fixture.expected_header:
            want = fixture.expected_value(i, col)
            if isinstance(want, str):
                assert row[col] == want, f"{fixture.name} row {i}: label {row[col]!r} != {want!r}"
            elif math.isnan(want):
                assert math.isnan(float(row[col])), f"{fixture.name} row {i} {col}: not NA"
            else:
                assert abs(float(row[col]) - want) <= TOLERANCE, f"{fixture.name} row {i} {col}"
