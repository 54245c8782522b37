"""Run Triton's or KServe's gRPC client, unchanged, in an interpreter of its own.

Both clients register the protocol's messages (package ``inference``) in protobuf's default pool
under different file names, so one process cannot import both: each test call runs this file.
Reads a JSON job on stdin, prints a JSON report on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np


def _array(datatype: str, values: list) -> np.ndarray:
    return np.array(values, dtype=object if datatype == "BYTES" else np.float64)


def _plain(array: np.ndarray) -> list:
    return [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]


def triton(job: dict) -> dict:
    import tritonclient.grpc as client_module
    from tritonclient.utils import InferenceServerException

    client = client_module.InferenceServerClient(url=job["url"])
    model = job["model"]
    inputs = []
    for name, (datatype, values) in job["columns"].items():
        tensor = client_module.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(_array(datatype, values))
        inputs.append(tensor)
    result = client.infer(model, inputs)
    metadata = client.get_model_metadata(model, as_json=True)
    errors = {}
    for case, (name, inputs_, version) in {
        "unknown_model": ("no-such-model", inputs, ""),
        "unknown_input": (model, [_renamed(client_module, inputs[0])], ""),
        "unknown_version": (model, inputs, "99"),
    }.items():
        try:
            client.infer(name, inputs_, model_version=version)
        except InferenceServerException as exc:
            errors[case] = [exc.status(), exc.message()]
    return {
        "live": client.is_server_live(),
        "ready": client.is_model_ready(model),
        "inputs": [i["name"] for i in metadata["inputs"]],
        "version": result.get_response().model_version,
        "pinned": client.infer(model, inputs, model_version="1").get_response().model_version,
        "outputs": {o: _plain(result.as_numpy(o)) for o in job["outputs"]},
        "errors": errors,
    }


def _renamed(client_module, tensor):
    renamed = client_module.InferInput("nope", [1], "FP64")
    renamed.set_data_from_numpy(np.array([1.0]))
    return renamed


async def kserve(job: dict) -> dict:
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    client = InferenceGRPCClient(url=job["url"])
    inputs = []
    for name, (datatype, values) in job["columns"].items():
        tensor = InferInput(name=name, shape=[len(values)], datatype=datatype)
        tensor.set_data_from_numpy(_array(datatype, values))
        inputs.append(tensor)
    try:
        live = await client.is_server_live()
        ready = await client.is_model_ready(job["model"])
        response = await client.infer(InferRequest(model_name=job["model"], infer_inputs=inputs))
    finally:
        await client.close()
    outputs = {o.name: _plain(o.as_numpy()) for o in response.outputs}
    return {
        "live": live,
        "ready": ready,
        "version": response.model_version,
        "outputs": {o: outputs[o] for o in job["outputs"]},
    }


if __name__ == "__main__":
    job = json.load(sys.stdin)
    report = triton(job) if job["client"] == "triton" else asyncio.run(kserve(job))
    json.dump(report, sys.stdout)
