"""The Open Inference Protocol's binary tensor data extension, as a pure codec (no I/O).

A request with the ``Inference-Header-Content-Length: N`` header carries N bytes of JSON followed
by the raw bytes of every input whose ``parameters.binary_data_size`` is set, in input order.
Numbers are little-endian in the tensor's datatype; a BYTES element is a 4-byte little-endian
length and that many bytes. Answers go the same way for each output asked for in binary
(``parameters.binary_data`` per output, else the request's ``binary_data_output``). Triton's
clients (``tritonclient``, ``perf_analyzer``) send and ask for binary data by default.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson

from converge.contracts import MAX_STRING_VALUE
from converge.errors import MalformedRequest

HEADER = "inference-header-content-length"
# Little-endian NumPy types of the fixed-size datatypes.
DTYPES: dict[str, str] = {
    "BOOL": "|b1", "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
_LENGTH = struct.Struct("<I")


class BinaryDataError(MalformedRequest):
    """Binary tensor data that does not match its JSON header; the message names the field."""


def json_length(value: str | None, body_size: int) -> int | None:
    """The JSON header's length from ``Inference-Header-Content-Length``, checked against the body."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise BinaryDataError(f"{HEADER}: {value!r} is not an integer") from None
    if not 0 < length <= body_size:
        raise BinaryDataError(f"{HEADER}: {length} is outside the body's {body_size} bytes")
    return length


def inline_inputs(body: Any, binary: memoryview) -> Any:
    """Replace each input's ``binary_data_size`` with its decoded ``data``, in input order.

    Every byte must belong to an input: a short or long tail is a malformed request, not data to
    guess at."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return body  # the request validator names what is wrong
    offset = 0
    for i, tensor in enumerate(body["inputs"]):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        size = parameters.pop("binary_data_size")
        if not parameters:
            del tensor["parameters"]
        where = f"inputs.{i}.parameters.binary_data_size"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BinaryDataError(f"{where}: must be a non-negative integer")
        if offset + size > len(binary):
            raise BinaryDataError(f"{where}: {size} bytes, but only {len(binary) - offset} remain")
        if "data" in tensor:
            raise BinaryDataError(f"inputs.{i}: give either data or binary_data_size, not both")
        tensor["data"] = decode_tensor(tensor.get("datatype"), binary[offset : offset + size], where)
        offset += size
    if offset != len(binary):
        raise BinaryDataError(f"{len(binary) - offset} bytes of binary data belong to no input")
    return body


def decode_tensor(datatype: Any, raw: memoryview | bytes, where: str) -> list[Any]:
    """Raw little-endian bytes as a flat list of Python values (BYTES as UTF-8 strings)."""
    if datatype == "BYTES":
        return _decode_bytes(raw, where)
    dtype = DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise BinaryDataError(f"{where}: datatype {datatype!r} has no binary form")
    width = np.dtype(dtype).itemsize
    if len(raw) % width:
        raise BinaryDataError(f"{where}: {len(raw)} bytes is not a whole number of {datatype}")
    values = np.frombuffer(raw, dtype=dtype)
    if datatype.startswith("FP") and np.isnan(values).any():
        # NaN is the binary form's missing value; JSON's is null.
        return [None if v != v else v for v in values.astype(np.float64).tolist()]
    return values.tolist()  # FP16/FP32 become Python floats (doubles) here


def _decode_bytes(raw: memoryview | bytes, where: str) -> list[Any]:
    values: list[Any] = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise BinaryDataError(f"{where}: BYTES element at byte {offset} has no 4-byte length")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if length > MAX_STRING_VALUE * 4 or offset + length > end:
            raise BinaryDataError(f"{where}: BYTES element at byte {offset - 4} overruns the data")
        try:
            values.append(bytes(raw[offset : offset + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise BinaryDataError(f"{where}: BYTES element at byte {offset - 4} is not UTF-8") from None
        offset += length
    return values


def split_request(raw: bytes, header: str | None) -> Any:
    """A request body as JSON with binary inputs decoded inline (the plain-JSON request too)."""
    length = json_length(header, len(raw))
    view = memoryview(raw)
    try:
        body = orjson.loads(view[:length] if length is not None else view)
    except orjson.JSONDecodeError as exc:
        raise BinaryDataError(f"malformed JSON header: {exc}") from None
    if length is None:
        return body
    return inline_inputs(body, view[length:])


def binary_outputs(body: Any, names: Iterable[str]) -> set[str]:
    """The outputs to answer in binary: ``binary_data`` per output, else ``binary_data_output``."""
    parameters = body.get("parameters") if isinstance(body, dict) else None
    default = bool(isinstance(parameters, dict) and parameters.get("binary_data_output") is True)
    requested = body.get("outputs") if isinstance(body, dict) else None
    if not requested:
        return set(names) if default else set()
    chosen = set()
    for output in requested:
        own = (output.get("parameters") or {}).get("binary_data")
        if own is True or (own is None and default):
            chosen.add(output["name"])
    return chosen


def encode_tensor(datatype: str, data: list[Any]) -> bytes:
    """Values as the extension's raw bytes; a missing number becomes NaN, a missing string ''."""
    if datatype == "BYTES":
        parts = []
        for value in data:
            encoded = b"" if value is None else str(value).encode("utf-8")
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    values = [np.nan if v is None else v for v in data]
    return np.asarray(values, dtype=DTYPES[datatype]).tobytes()


def build_response(answer: dict[str, Any], binary: set[str]) -> tuple[bytes, int | None]:
    """(body, JSON length): outputs in ``binary`` move behind the JSON as raw bytes; with none,
    the body is plain JSON and the length is None (no header to send)."""
    if not binary:
        return orjson.dumps(answer), None
    tails = []
    for output in answer["outputs"]:
        if output["name"] not in binary:
            continue
        raw = encode_tensor(output["datatype"], output.pop("data"))
        output["parameters"] = {**output.get("parameters", {}), "binary_data_size": len(raw)}
        tails.append(raw)
    head = orjson.dumps(answer)
    return head + b"".join(tails), len(head)
