"""The input check: which features a model does not know and which values it scores as missing."""

from types import SimpleNamespace

import pytest

from converge.errors import InvalidInput
from converge.serving.status import status_of
from converge.serving.input_check import InputSchema, check_rows

MODEL = SimpleNamespace(
    feature_names=["age", "race", "promo"],
    domains={"age": None, "race": ["0", "1", "2"], "promo": ["False", "True"]},
    response_name="label",
    offset_column=None,
)
SCHEMA = InputSchema.of(MODEL)


@pytest.mark.parametrize(
    ("row", "issues"),
    [
        ({"age": 65.0, "race": "1", "promo": True, "label": "1"}, None),  # the response is known
        ({"age": 65, "race": 2, "promo": "True"}, None),  # whole numbers name levels
        ({"age": "6.5e1", "race": "race.1"}, None),  # Java number syntax; the name.level form
        ({"age": None, "race": None}, None),  # missing on purpose is not an issue
        ({"agee": 65}, {"unknown_features": ["agee"]}),
        ({"agee": None}, {"unknown_features": ["agee"]}),
        ({"age": "sixty", "race": "9", "promo": 1.5}, {"coerced_to_missing": ["age", "promo", "race"]}),
        ({"age": "NaN", "race": 1.5}, {"coerced_to_missing": ["age", "race"]}),
    ],
)
def test_issues_follow_the_scorers_rules(row, issues):
    assert SCHEMA.issues(row) == issues


def test_strict_names_each_field_and_lenient_reports_rows():
    rows = [{"age": 1.0}, {"agee": 1, "race": "x"}]
    assert check_rows(SCHEMA, "m", rows, strict=False) == [
        {"row": 1, "unknown_features": ["agee"], "coerced_to_missing": ["race"]}
    ]
    with pytest.raises(InvalidInput) as refused:
        check_rows(SCHEMA, "m", rows, strict=True)
    assert status_of(refused.value).http == 422
    assert [d["loc"] for d in refused.value.detail] == [
        ["instances", 1, "features", "agee"],
        ["instances", 1, "features", "race"],
    ]


def test_a_model_without_a_schema_is_not_checked():
    assert InputSchema.of(SimpleNamespace()) is None
    assert check_rows(None, "m", [{"anything": 1}], strict=True) is None
