"""The demo data set has the structure the demo promises, and user files fail with clear errors."""

from pathlib import Path

import numpy as np
import pytest

from converge.datasets import BINARY_TARGET, NUMERIC_TARGET, DataFileError, read_table, synthetic_demand


def test_synthetic_demand_is_deterministic_and_structured():
    first = synthetic_demand(entities=20, days=60, seed=3)
    again = synthetic_demand(entities=20, days=60, seed=3)
    assert first == again
    assert len(first) == 20 * 60
    assert all(v.event_time.tzinfo is not None for v in first)
    families = {v.features["family"] for v in first}
    assert len(families) > 10  # many-level categorical
    assert any(v.features["price"] is None for v in first)  # missing values exist
    assert {v.features[BINARY_TARGET] for v in first} == {"yes", "no"}


def test_synthetic_demand_has_a_weekly_signal():
    vectors = synthetic_demand(entities=30, days=120, seed=1)
    weekend = [v.features[NUMERIC_TARGET] for v in vectors if v.features["weekday"] >= 5]
    weekday = [v.features[NUMERIC_TARGET] for v in vectors if v.features["weekday"] < 5]
    assert np.mean(weekend) - np.mean(weekday) > 3.0


def test_read_table_turns_csv_rows_into_vectors(tmp_path: Path):
    path = tmp_path / "sales.csv"
    path.write_text("ts,store,units,city\n2024-01-01T00:00:00Z,s1,3,Oslo\n2024-01-02T00:00:00Z,s2,,Bergen\n")
    vectors = list(read_table(path, time_column="ts", entity_column="store"))
    assert [v.entity_id for v in vectors] == ["s1", "s2"]
    assert vectors[0].features == {"units": 3.0, "city": "Oslo"}
    assert vectors[1].features["units"] is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ts,store\n2024-01-01,s1\n", "'entity'"),
        ("when,entity\nnot-a-date,s1\n", "'when' is not a date/time"),
    ],
)
def test_read_table_errors_name_the_file_and_the_problem(tmp_path: Path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataFileError) as error:
        list(read_table(path, time_column="when" if "when" in content else "ts", entity_column="entity"))
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_read_table_missing_file(tmp_path: Path):
    with pytest.raises(DataFileError, match="no such file"):
        list(read_table(tmp_path / "nope.csv", time_column="t", entity_column="e"))
