"""V2 tensors become the same records the native API takes, and bad tensors get clear 400s."""

import pytest

from converge.contracts import Prediction
from converge.serving.v2_codec import (
    InferenceError,
    decode_inputs,
    encode_outputs,
    input_specs,
    parse_request,
)

FEATURES = ["age", "city", "income"]
CATEGORICAL = {"city"}


def _decode(body):
    return decode_inputs(parse_request(body), FEATURES, CATEGORICAL)


def test_one_tensor_per_feature_becomes_records():
    records = _decode(
        {
            "inputs": [
                {"name": "age", "shape": [2], "datatype": "INT64", "data": [31, 45]},
                {"name": "city", "shape": [2, 1], "datatype": "BYTES", "data": [["Oslo"], ["Rome"]]},
                {"name": "income", "shape": [2], "datatype": "FP64", "data": [1.5, None]},
            ]
        }
    )
    assert records == [
        {"age": 31, "city": "Oslo", "income": 1.5},
        {"age": 45, "city": "Rome", "income": None},
    ]


def test_row_major_matrix_becomes_records():
    records = decode_inputs(
        parse_request({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}),
        ["a", "b"],
        set(),
    )
    assert records == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([{"name": "height", "shape": [1], "datatype": "FP64", "data": [1.0]}], "unknown input 'height'"),
        ([{"name": "age", "shape": [3], "datatype": "FP64", "data": [1.0]}], "does not match 1 values"),
        ([{"name": "city", "shape": [1], "datatype": "FP64", "data": [1.0]}], "datatype FP64 but the feature is BYTES"),
        ([{"name": "age", "shape": [1], "datatype": "BYTES", "data": ["x"]}], "datatype BYTES but the feature is numeric"),
        ([{"name": "age", "shape": [1], "datatype": "INT64", "data": [1.5]}], "does not match datatype INT64"),
        (
            [
                {"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "income", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
            ],
            "other inputs have 1",
        ),
        ([{"name": "m", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}], "has 3 features"),
    ],
)
def test_bad_tensors_are_rejected_with_a_message(inputs, message):
    with pytest.raises(InferenceError, match=message):
        _decode({"inputs": inputs})


def test_malformed_request_names_the_field():
    with pytest.raises(InferenceError, match="inputs.0.datatype"):
        parse_request({"inputs": [{"name": "age", "shape": [1], "datatype": "FLOAT", "data": [1]}]})


def test_specs_follow_feature_types():
    specs = {s.name: s.datatype for s in input_specs(FEATURES, CATEGORICAL)}
    assert specs == {"age": "FP64", "city": "BYTES", "income": "FP64"}


def test_outputs_carry_labels_and_class_probabilities():
    predictions = [
        Prediction(label="yes", probabilities={"no": 0.25, "yes": 0.75}),
        Prediction(label="no", probabilities={"no": 0.9, "yes": 0.1}),
    ]
    outputs = encode_outputs(predictions, ["no", "yes"], None)
    assert [o["name"] for o in outputs] == ["predict", "no", "yes"]
    assert outputs[0] == {"name": "predict", "datatype": "BYTES", "shape": [2], "data": ["yes", "no"]}
    assert outputs[2]["data"] == [0.75, 0.1]
    only = encode_outputs(predictions, ["no", "yes"], parse_request(
        {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": [{"name": "yes"}]}
    ).outputs)
    assert [o["name"] for o in only] == ["yes"]
    with pytest.raises(InferenceError, match="unknown output"):
        encode_outputs(predictions, ["no", "yes"], parse_request(
            {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": [{"name": "p"}]}
        ).outputs)


def test_overlong_strings_are_refused():
    with pytest.raises(InferenceError, match="does not match datatype BYTES"):
        _decode({"inputs": [{"name": "city", "shape": [1], "datatype": "BYTES", "data": ["x" * 5000]}]})


def test_fast_and_validated_parsing_agree():
    body = {"id": "r1", "inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [3.0]}]}
    fast = parse_request(body)
    slow = parse_request({**body, "parameters": {}})  # parameters take the validated path
    assert fast == slow


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v2", ("server_metadata", {})),
        ("GET", "/v2/health/ready", ("server_ready", {})),
        ("GET", "/v2/models/m", ("model_metadata", {"name": "m"})),
        ("GET", "/v2/models/m/versions/3/ready", ("model_ready", {"name": "m", "version": "3"})),
        ("POST", "/v2/models/m/infer", ("infer", {"name": "m"})),
        ("POST", "/v2/models/m/versions/3/infer", ("infer", {"name": "m", "version": "3"})),
        ("GET", "/v2/models/m/infer", None),
        ("POST", "/v2/models//infer", None),
        ("GET", "/v3", None),
    ],
)
def test_routes(method, path, expected):
    from converge.serving.web.router import RouteTable
    from converge.serving.web.v2 import routes

    found = RouteTable(routes(runtime=None)).match(method, path)
    assert (found and (found[0].__name__, found[1])) == expected
