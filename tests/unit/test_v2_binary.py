"""The binary tensor data extension: every datatype in, every output form out.

Expected values are the arrays NumPy itself serialised (the extension's layout is NumPy's
little-endian ``tobytes``), and BYTES elements are built by hand from the protocol's rule."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from converge.serving.v2_binary import (
    BinaryDataError,
    binary_outputs,
    build_response,
    split_request,
)

NUMERIC = {
    "BOOL": np.array([True, False, True]),
    "INT8": np.array([-3, 0, 7], dtype=np.int8),
    "INT16": np.array([-300, 0, 700], dtype=np.int16),
    "INT32": np.array([-3, 2**31 - 1, 7], dtype=np.int32),
    "INT64": np.array([-(2**62), 0, 2**62], dtype=np.int64),
    "UINT8": np.array([0, 1, 255], dtype=np.uint8),
    "UINT16": np.array([0, 1, 65535], dtype=np.uint16),
    "UINT32": np.array([0, 1, 2**32 - 1], dtype=np.uint32),
    "UINT64": np.array([0, 1, 2**64 - 1], dtype=np.uint64),
    "FP16": np.array([0.5, -2.0, 1024.0], dtype=np.float16),
    "FP32": np.array([0.1, -2.5, 3.25], dtype=np.float32),
    "FP64": np.array([0.1, -2.5, 1e300], dtype=np.float64),
}


def _request(tensors: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    inputs = [
        {"name": n, "shape": [3], "datatype": d, "parameters": {"binary_data_size": len(raw)}}
        for n, (d, raw) in tensors.items()
    ]
    head = orjson.dumps({"inputs": inputs})
    return head + b"".join(raw for _, raw in tensors.values()), str(len(head))


def _bytes_tensor(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def test_every_datatype_decodes_to_the_values_numpy_wrote():
    tensors = {dt: (dt, array.tobytes()) for dt, array in NUMERIC.items()}
    tensors["city"] = ("BYTES", _bytes_tensor([b"Paris", b"", "Zürich".encode()]))
    body = split_request(*_request(tensors))
    decoded = {t["name"]: t["data"] for t in body["inputs"]}
    for dt, array in NUMERIC.items():
        assert decoded[dt] == array.astype(np.float64 if dt.startswith("FP") else array.dtype).tolist()
    assert decoded["city"] == ["Paris", "", "Zürich"]
    assert all("parameters" not in t for t in body["inputs"])


def test_nan_is_a_missing_number():
    raw = np.array([1.0, np.nan], dtype=np.float64).tobytes()
    body = split_request(*_request({"x": ("FP64", raw)}))
    assert body["inputs"][0]["data"] == [1.0, None]


@pytest.mark.parametrize(
    ("tensors", "tail", "message"),
    [
        ({"x": ("FP64", b"\0" * 12)}, b"", "not a whole number of FP64"),
        ({"x": ("BYTES", b"\x05\0\0\0ab")}, b"", "overruns the data"),
        ({"x": ("BYTES", b"\x01\0")}, b"", "has no 4-byte length"),
        ({"x": ("BYTES", b"\x01\0\0\0\xff")}, b"", "is not UTF-8"),
        ({"x": ("FP64", b"\0" * 8)}, b"\0", "belong to no input"),
    ],
)
def test_malformed_binary_data_names_the_problem(tensors, tail, message):
    raw, header = _request(tensors)
    with pytest.raises(BinaryDataError, match=message):
        split_request(raw + tail, header)


@pytest.mark.parametrize("header", ["abc", "0", "99999"])
def test_a_header_length_outside_the_body_is_refused(header):
    with pytest.raises(BinaryDataError, match="inference-header-content-length"):
        split_request(b'{"inputs": []}', header)


def test_outputs_asked_in_binary_follow_the_json():
    answer = {
        "model_name": "m",
        "outputs": [
            {"name": "predict", "datatype": "BYTES", "shape": [2], "data": ["yes", None]},
            {"name": "yes", "datatype": "FP64", "shape": [2], "data": [0.25, None]},
        ],
    }
    body, length = build_response(answer, {"predict", "yes"})
    head = orjson.loads(body[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    tail = body[length:]
    assert tail[: sizes[0]] == _bytes_tensor([b"yes", b""])
    values = np.frombuffer(tail[sizes[0] :], dtype="<f8")
    assert values[0] == 0.25 and np.isnan(values[1])


def test_which_outputs_are_binary():
    names = ["predict", "a", "b"]
    assert binary_outputs({"parameters": {"binary_data_output": True}}, names) == set(names)
    assert binary_outputs({}, names) == set()
    body = {
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}],
    }
    assert binary_outputs(body, names) == {"b"}
    assert binary_outputs({"outputs": [{"name": "a", "parameters": {"binary_data": True}}]}, names) == {"a"}
