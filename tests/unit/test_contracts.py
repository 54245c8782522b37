"""Bad input is refused at the boundary with an error that names the field (and the key)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from converge.contracts import (
    MAX_BATCH,
    MAX_FEATURE_KEYS,
    MAX_KEY_LENGTH,
    FeatureVector,
    IngestBatch,
    ModelRef,
    PredictRequest,
)

T = "2024-01-31T12:00:00Z"


def errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[dict]:
    return exc.value.errors(include_url=False)


def vector_json(features: object, event_time: str = T, entity_id: str = "e1") -> bytes:
    return orjson.dumps({"entity_id": entity_id, "event_time": event_time, "features": features})


@pytest.mark.parametrize("features", [[1, 2], "x=1", 3, None, True])
def test_features_must_be_an_object(features: object) -> None:
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(vector_json(features))
    assert [e["loc"][0] for e in errors(exc)] == ["features"] * len(errors(exc))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_from_json(token: str) -> None:
    raw = f'{{"entity_id": "e1", "event_time": "{T}", "features": {{"amount": {token}}}}}'
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(raw)
    (err,) = errors(exc)
    assert err["loc"] == ("features",)
    assert "amount" in err["msg"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_from_python(value: float) -> None:
    with pytest.raises(ValidationError) as exc:
        FeatureVector(entity_id="e1", event_time=datetime.now(UTC), features={"amount": value})
    assert errors(exc)[0]["loc"] == ("features",)
    assert "amount" in errors(exc)[0]["msg"]


def test_oversized_key_is_refused() -> None:
    key = "k" * (MAX_KEY_LENGTH + 1)
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(vector_json({key: 1.0}))
    assert errors(exc)[0]["loc"] == ("features",)
    assert "key" in errors(exc)[0]["msg"]


def test_too_many_keys_are_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(
            vector_json({f"k{i}": i for i in range(MAX_FEATURE_KEYS + 1)})
        )
    assert errors(exc)[0]["loc"] == ("features",)


def test_out_of_range_integer_and_nested_values_are_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(vector_json({"big": 2**60}))
    assert errors(exc)[0]["loc"] == ("features",) and "big" in errors(exc)[0]["msg"]
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(vector_json({"nested": {"a": 1}}))
    assert all(e["loc"][:2] == ("features", "nested") for e in errors(exc))


def test_naive_event_time_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(vector_json({"a": 1}, event_time="2024-01-31T12:00:00"))
    (err,) = errors(exc)
    assert err["loc"] == ("event_time",)
    assert "time zone" in err["msg"]


@pytest.mark.parametrize("entity_id", ["", "a\x00b", "line\nbreak", "x" * 257])
def test_bad_entity_ids_are_refused(entity_id: str) -> None:
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(vector_json({"a": 1}, entity_id=entity_id))
    assert errors(exc)[0]["loc"] == ("entity_id",)


def test_unknown_fields_are_refused() -> None:
    raw = orjson.dumps({"entity_id": "e", "event_time": T, "features": {}, "extra": 1})
    with pytest.raises(ValidationError) as exc:
        FeatureVector.model_validate_json(raw)
    assert errors(exc)[0]["loc"] == ("extra",)


def test_batch_bounds_and_error_location() -> None:
    with pytest.raises(ValidationError) as exc:
        IngestBatch.model_validate({"vectors": []})
    assert errors(exc)[0]["loc"] == ("vectors",)
    good = {"entity_id": "e", "event_time": T, "features": {"a": 1}}
    bad = {"entity_id": "e", "event_time": T, "features": {"a": math.nan}}
    with pytest.raises(ValidationError) as exc:
        IngestBatch.model_validate({"vectors": [good, good, bad]})
    assert errors(exc)[0]["loc"] == ("vectors", 2, "features")
    with pytest.raises(ValidationError):
        IngestBatch.model_validate({"vectors": [good] * (MAX_BATCH + 1)})


@pytest.mark.parametrize("name", ["../etc", "a/b", "Demo", "a..b", "", "-x", "x" * 65])
def test_model_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ModelRef(name=name)
    assert errors(exc)[0]["loc"] == ("name",)


def test_predict_request_accepts_a_single_instance() -> None:
    req = PredictRequest.model_validate({"model": "demo", "features": {"a": 1}})
    assert len(req.instances) == 1 and req.instances[0].features == {"a": 1}
    with pytest.raises(ValidationError):
        PredictRequest.model_validate({"instances": [{"features": {"a": 1}, "entity_id": "e"}]})


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50).filter(lambda s: "\x00" not in s),
)
_keys = st.text(min_size=1, max_size=MAX_KEY_LENGTH).filter(lambda s: "\x00" not in s)


@given(st.dictionaries(_keys, _values, max_size=30))
def test_valid_vectors_round_trip_through_json(features: dict) -> None:
    """What the contract accepts survives JSON (what the store and the wire use) unchanged."""
    vec = FeatureVector(entity_id="e1", event_time=datetime(2024, 1, 1, tzinfo=UTC), features=features)
    again = FeatureVector.model_validate_json(vec.model_dump_json())
    assert again == vec
