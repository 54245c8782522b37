"""The Open Inference Protocol's (KServe "V2") JSON tensors as converge's records, and back.

A pure codec: V2 tensors in, records out; predictions in, V2 tensors out. No I/O, no model: the
data plane (:mod:`.open_inference`) and both transports (REST in :mod:`.web.v2`, gRPC in
:mod:`.v2grpc`) use it, so they validate and answer alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence, Set
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from converge.contracts import MAX_STRING_VALUE
from converge.errors import MalformedRequest

PROTOCOL_VERSION = "2"
#: outputs a client may name besides the model's own: each row's SHAP contributions, each tree's
#: leaf path and leaf id, calibrated class probabilities and a GLRM's reconstruction, with their
#: tensors' datatypes
EXTRA_OUTPUTS = {"contributions": "FP64", "leaf_assignment": "BYTES", "leaf_node_ids": "INT64",
                 "calibrated_probabilities": "FP64", "reconstruction": "FP64"}
Datatype = Literal[
    "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip


class InferenceError(MalformedRequest):
    """A request the protocol answers with 400 and ``{"error": message}``."""


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    # Clients add fields of their own (KServe's sends model_name); the protocol's are checked.
    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1024)
    outputs: list[RequestOutput] | None = None


class TensorSpec(BaseModel):
    name: str
    datatype: str
    shape: list[int]


_DATATYPES = set(Datatype.__args__)  # type: ignore[attr-defined]
_BINARY_FLAG = {"binary_data_output"}


def _well_formed(body: Any) -> bool:
    """The common, valid request, checked without building pydantic validators per tensor."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        return False
    if not set(body) <= {"id", "parameters", "inputs", "outputs", "model_name", "model_version"}:
        return False
    if body.get("outputs") is not None:
        return False
    parameters = body.get("parameters")  # the binary extension's flag is read by the route
    if parameters is not None and (not isinstance(parameters, dict) or set(parameters) - _BINARY_FLAG):
        return False
    if body.get("id") is not None and not isinstance(body["id"], str):
        return False
    for tensor in body["inputs"]:
        if not isinstance(tensor, dict) or set(tensor) - {"name", "shape", "datatype", "data", "parameters"}:
            return False
        name, shape = tensor.get("name"), tensor.get("shape")
        if not isinstance(name, str) or not 0 < len(name) <= 128 or tensor.get("parameters") is not None:
            return False
        if not isinstance(shape, list) or not 1 <= len(shape) <= 2:
            return False
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            return False
        if tensor.get("datatype") not in _DATATYPES or not isinstance(tensor.get("data"), list):
            return False
    return len(body["inputs"]) <= 1024


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


@dataclass(frozen=True, slots=True)
class Parsed:
    """A request after validation: plain values, cheap to build on the hot path."""

    id: str | None
    inputs: list[Tensor]
    outputs: list[str] | None


def parse_request(body: Any) -> Parsed:
    """Validate the JSON body; the error names the first offending field.

    Well-formed bodies (nearly all of them) are checked by hand; anything else goes through the
    pydantic models, which produce the message.
    """
    if not _well_formed(body):
        try:
            body = InferRequest.model_validate(body).model_dump()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise InferenceError(f"invalid inference request: {where}: {first['msg']}") from None
    outputs = body.get("outputs")
    return Parsed(
        id=body.get("id"),
        inputs=[Tensor(t["name"], t["shape"], t["datatype"], t["data"]) for t in body["inputs"]],
        outputs=[o["name"] for o in outputs] if outputs else None,
    )


def input_specs(feature_names: Sequence[str], categorical: Set[str]) -> list[TensorSpec]:
    """One input per feature: BYTES for categoricals, FP64 for numbers; any batch size."""
    return [
        TensorSpec(name=name, datatype="BYTES" if name in categorical else "FP64", shape=[-1])
        for name in feature_names
    ]


def output_specs(
    classes: Sequence[str] | None, columns: Sequence[str] | None = None
) -> list[TensorSpec]:
    """``predict`` (+ one per class), or the model's own columns (clusters, components...)."""
    if columns:
        return [TensorSpec(name=name, datatype="FP64", shape=[-1]) for name in columns]
    if classes is None:
        return [TensorSpec(name="predict", datatype="FP64", shape=[-1])]
    return [TensorSpec(name="predict", datatype="BYTES", shape=[-1])] + [
        TensorSpec(name=label, datatype="FP64", shape=[-1]) for label in classes
    ]


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _check_values(tensor: Tensor, values: list[Any]) -> list[Any]:
    """Values must match the declared datatype; JSON nulls are missing values."""
    kind = tensor.datatype
    for value in values:
        if value is None:
            continue
        if kind == "BYTES":
            ok = isinstance(value, str) and len(value) <= MAX_STRING_VALUE
        elif kind == "BOOL":
            ok = isinstance(value, bool)
        elif kind.startswith(("INT", "UINT")):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and isinstance(value, float) and not math.isfinite(value):
                ok = False
        if not ok:
            raise InferenceError(
                f"input '{tensor.name}': value {str(value)[:40]!r} does not match datatype {kind}"
            )
    if kind == "BOOL":
        return [None if v is None else float(v) for v in values]
    return values


def decode_inputs(
    request: Parsed, feature_names: Sequence[str], categorical: Set[str]
) -> list[dict[str, Any]]:
    """Turn V2 input tensors into records: one tensor per feature, or one [N, F] row-major tensor."""
    features = list(feature_names)
    known = set(features)
    if len(request.inputs) == 1 and request.inputs[0].name not in known:
        return _decode_matrix(request.inputs[0], features, categorical)

    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for tensor in request.inputs:
        if tensor.name not in known:
            raise InferenceError(f"unknown input '{tensor.name}'; the model's inputs are {features[:20]}")
        if tensor.name in columns:
            raise InferenceError(f"input '{tensor.name}' given twice")
        if len(tensor.shape) == 2 and tensor.shape[1] != 1:
            raise InferenceError(f"input '{tensor.name}': shape {tensor.shape} must be [N] or [N, 1]")
        expected_type = "BYTES" if tensor.name in categorical else "numeric"
        if (tensor.datatype == "BYTES") != (expected_type == "BYTES"):
            raise InferenceError(
                f"input '{tensor.name}': datatype {tensor.datatype} but the feature is {expected_type}"
            )
        values = _check_values(tensor, _flatten(tensor.data))
        if len(values) != tensor.shape[0] or tensor.shape[0] < 0:
            raise InferenceError(
                f"input '{tensor.name}': shape {tensor.shape} does not match {len(values)} values"
            )
        if rows is not None and tensor.shape[0] != rows:
            raise InferenceError(
                f"input '{tensor.name}': {tensor.shape[0]} rows, other inputs have {rows}"
            )
        rows = tensor.shape[0]
        columns[tensor.name] = values
    assert rows is not None  # min_length=1 on inputs
    if rows == 0:
        raise InferenceError("inputs hold no rows")
    return [{name: column[i] for name, column in columns.items()} for i in range(rows)]


def _decode_matrix(
    tensor: Tensor, features: list[str], categorical: Set[str]
) -> list[dict[str, Any]]:
    if len(tensor.shape) != 2:
        raise InferenceError(
            f"unknown input '{tensor.name}'; send one tensor per feature ({features[:20]}) "
            f"or a single [N, {len(features)}] tensor"
        )
    rows, width = tensor.shape
    if width != len(features):
        raise InferenceError(
            f"input '{tensor.name}': shape {tensor.shape} but the model has {len(features)} features"
        )
    values = _check_values(tensor, _flatten(tensor.data))
    if rows <= 0 or len(values) != rows * width:
        raise InferenceError(
            f"input '{tensor.name}': shape {tensor.shape} does not match {len(values)} values"
        )
    if tensor.datatype != "BYTES" and categorical & set(features):
        raise InferenceError(
            f"input '{tensor.name}': the model has categorical features, send BYTES (or one tensor per feature)"
        )
    return [dict(zip(features, values[r * width : (r + 1) * width], strict=True)) for r in range(rows)]


def encode_outputs(
    predictions: Sequence[Any],
    classes: Sequence[str] | None,
    wanted: list[str] | None,
    columns: Sequence[str] | None = None,
    extras: dict[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """``predict`` plus one FP64 tensor per class, or one per output column of a model that
    has its own (``columns``); restricted to the requested outputs. ``extras`` (an extra
    output's name -> its columns, when asked for) adds an [N, columns] tensor per extra, the
    column names in its ``parameters``."""
    n = len(predictions)
    if extras:
        tensors = [
            {"name": name, "datatype": EXTRA_OUTPUTS[name], "shape": [n, len(names)],
             "parameters": {"columns": list(names)},
             "data": [p.extras[name][c] for p in predictions for c in names]}
            for name, names in extras.items()
        ]  # fmt: skip
        rest = [w for w in wanted or () if w not in extras]
        return [*(encode_outputs(predictions, classes, rest, columns) if rest else []), *tensors]
    if columns:
        outputs = [
            {"name": c, "datatype": "FP64", "shape": [n], "data": [(p.outputs or {}).get(c) for p in predictions]}
            for c in columns
        ]
        return _requested(outputs, wanted)
    outputs = [
        {
            "name": "predict",
            "datatype": "FP64" if classes is None else "BYTES",
            "shape": [n],
            "data": [p.label for p in predictions],
        }
    ]
    for label in classes or []:
        outputs.append(
            {
                "name": label,
                "datatype": "FP64",
                "shape": [n],
                "data": [(p.probabilities or {}).get(label) for p in predictions],
            }
        )
    return _requested(outputs, wanted)


def _requested(outputs: list[dict[str, Any]], wanted: list[str] | None) -> list[dict[str, Any]]:
    if wanted:
        names = {o["name"] for o in outputs}
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise InferenceError(f"unknown output '{unknown[0]}'; outputs are {sorted(names)}")
        keep = set(wanted)
        outputs = [o for o in outputs if o["name"] in keep]
    return outputs


@dataclass(frozen=True, slots=True)
class Prediction:
    label: Any
    probabilities: dict[str, float] | None
    outputs: dict[str, Any] | None = None
    extras: dict[str, dict[str, Any]] | None = None
