"""The Open Inference Protocol over gRPC: the second transport over the V2 data plane.

Messages are translated into the JSON request's shape and go through the same validation, scoring,
cache and metrics as ``POST /v2/models/{m}/infer`` (:mod:`converge.serving.open_inference`).
Tensors sent raw (``raw_input_contents``, what Triton's client sends) are answered raw; tensors
sent in ``contents`` (KServe's client) are answered in ``contents``.
"""

from __future__ import annotations

from typing import Any

import grpc

from converge import __version__
from converge.serving import open_inference, v2_codec
from converge.serving.status import status_of
from converge.serving.v2_binary import decode_tensor, encode_tensor
from converge.serving.v2grpc import grpc_predict_v2_pb2 as pb
from converge.serving.v2grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from converge.serving.v2grpc import health_pb2, health_pb2_grpc


# Which InferTensorContents field holds each datatype (FP16 has none: raw only).
CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}  # fmt: skip


def request_body(request: pb.ModelInferRequest) -> dict[str, Any]:
    """The JSON request with the same tensors: one validator for both transports."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise v2_codec.InferenceError(
            f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs"
        )
    inputs = []
    for i, tensor in enumerate(request.inputs):
        where = f"inputs.{i}"
        if raw:
            data = decode_tensor(tensor.datatype, raw[i], f"raw_input_contents.{i}")
        else:
            field = CONTENTS.get(tensor.datatype)
            if field is None:
                raise v2_codec.InferenceError(f"{where}.datatype: {tensor.datatype!r} needs raw contents")
            data = list(getattr(tensor.contents, field))
            if tensor.datatype == "BYTES":
                try:
                    data = [value.decode("utf-8") for value in data]
                except UnicodeDecodeError:
                    raise v2_codec.InferenceError(f"{where}.contents: BYTES element is not UTF-8") from None
        inputs.append(
            {"name": tensor.name, "shape": list(tensor.shape), "datatype": tensor.datatype, "data": data}
        )
    body: dict[str, Any] = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    if request.outputs:
        body["outputs"] = [{"name": o.name} for o in request.outputs]
    return body


def response_message(answer: dict[str, Any], raw: bool) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(
        model_name=answer["model_name"],
        model_version=answer["model_version"],
        id=answer.get("id", ""),
    )
    for output in answer["outputs"]:
        tensor = response.outputs.add(
            name=output["name"], datatype=output["datatype"], shape=output["shape"]
        )
        if raw:
            response.raw_output_contents.append(encode_tensor(output["datatype"], output["data"]))
        elif output["datatype"] == "BYTES":
            tensor.contents.bytes_contents.extend(
                b"" if v is None else str(v).encode("utf-8") for v in output["data"]
            )
        else:
            values = [float("nan") if v is None else v for v in output["data"]]
            getattr(tensor.contents, CONTENTS[output["datatype"]]).extend(values)
    return response


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six calls of KServe's ``GRPCInferenceService``, on a process's runtime."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:  # noqa: N802
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:  # noqa: N802
        await self.runtime.start("predict")
        ready = self.runtime.holder.get(self.runtime.settings.default_model) is not None
        return pb.ServerReadyResponse(ready=ready)

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:  # noqa: N802
        return pb.ServerMetadataResponse(name="converge", version=__version__, extensions=[])

    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:  # noqa: N802
        async with _status(context):
            await open_inference.resolve(self.runtime, request.name, request.version or None)
            return pb.ModelReadyResponse(ready=True)

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:  # noqa: N802
        async with _status(context):
            loaded = await open_inference.resolve(self.runtime, request.name, request.version or None)
            return pb.ModelMetadataResponse(**open_inference.metadata(loaded))

    async def ModelInfer(self, request: Any, context: Any) -> pb.ModelInferResponse:  # noqa: N802
        async with _status(context):
            await self.runtime.start("predict")
            parsed = v2_codec.parse_request(request_body(request))
            answer = await open_inference.infer(
                self.runtime, request.model_name, request.model_version or None, parsed
            )
            return response_message(answer, raw=bool(request.raw_input_contents))


class HealthServicer(health_pb2_grpc.HealthServicer):
    """``grpc.health.v1.Health/Check`` for Kubernetes' gRPC probes: SERVING once the default
    model is loaded (the REST function's ``/readyz``), NOT_SERVING before."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    async def Check(self, request: Any, context: Any) -> health_pb2.HealthCheckResponse:  # noqa: N802
        await self.runtime.start("predict")
        ready = self.runtime.holder.get(self.runtime.settings.default_model) is not None
        status = health_pb2.HealthCheckResponse
        return status(status=status.SERVING if ready else status.NOT_SERVING)


class _status:
    """Errors of the data plane as gRPC statuses with the same messages as the REST answers."""

    def __init__(self, context: Any) -> None:
        self.context = context

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if not isinstance(exc, Exception) or isinstance(exc, grpc.aio.AbortError):
            return False
        status = status_of(exc)
        await self.context.abort(grpc.StatusCode[status.grpc], status.message)  # raises AbortError
        return False


async def serve(runtime: Any, host: str, port: int) -> grpc.aio.Server:
    """A started gRPC server (HTTP/2 cleartext, what Knative's ``h2c`` port carries)."""
    # SO_REUSEPORT stays on (gRPC's default): `converge serve --workers N` shares the port.
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", runtime.settings.max_body_bytes)]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(runtime), server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(runtime), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC")
    await server.start()
    return server
