"""KServe's and Triton's own clients talk to the predict function unchanged (Open Inference Protocol).

The clients come from PyPI (`kserve`, `tritonclient[http]`); the server is the real predict function
under functions-framework against the real local stack. Their numbers must equal converge.mojo's
for the same rows, and bad tensors get the protocol's 400 with a message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from converge.checkout import CORPUS, REPO
from converge.db import create_pool
from converge.mojo import load_mojo
from converge.reference import genmodel_predictions
from converge.serving.testing import (
    FunctionProcess,
    migrate,
    read_rows,
    register_model,
    trainer_predictions,
    wait_until,
)
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(update={"default_model": f"oip-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="module")
def mojo() -> bytes:
    return (CORPUS / "binomial.zip").read_bytes()


@pytest.fixture(scope="module")
def model(mojo):
    return load_mojo(mojo, backend="native")


@pytest.fixture(scope="module")
def rows(model) -> list[dict]:
    """Corpus rows as a V2 client sends them: strings for categoricals ("" when missing), floats.

    JSON has no NaN, so rows with a missing number are left out (the native API sends null).
    """
    categorical = {n for n in model.feature_names if model.domains.get(n)}
    out = []
    for row in read_rows(CORPUS / "binomial.input.csv", 60):
        if any(row.get(n) is None for n in model.feature_names if n not in categorical):
            continue
        out.append(
            {
                n: ("" if row.get(n) is None else str(row[n]).removesuffix(".0"))
                if n in categorical
                else float(row[n])
                for n in model.feature_names
            }
        )
    assert len(out) >= 10
    return out[:25]


@pytest.fixture(scope="module")
async def server(settings, mojo, tmp_path_factory):
    await migrate(settings)
    pool = await create_pool(settings, min_size=0)
    rows = read_rows(CORPUS / "binomial.input.csv", 10)
    await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    await pool.close()
    log = tmp_path_factory.mktemp("oip") / "predict.log"
    proc = FunctionProcess("predict", REPO / "functions" / "main.py", settings, free_port(), log)
    proc.start()

    async def ready():
        async with httpx.AsyncClient(base_url=proc.url) as client:
            return (await client.get("/v2/health/ready")).status_code == 200

    await wait_until(ready, timeout=60)
    yield proc
    proc.stop()


def _expected(model, rows):
    """genmodel's own answers (the reference), not our scorer's."""
    return genmodel_predictions(CORPUS / "binomial.zip", rows)


def _columns(model, rows):
    """One column per feature, as numpy arrays the clients understand."""
    categorical = {n for n in model.feature_names if model.domains.get(n)}
    columns = {}
    for name in model.feature_names:
        values = [r[name] for r in rows]
        if name in categorical:
            columns[name] = ("BYTES", np.array(values, dtype=object))
        else:
            columns[name] = ("FP64", np.array(values, dtype=np.float64))
    return columns


async def test_kserve_rest_client_gets_the_scorers_numbers(server, settings, model, rows):
    from kserve import InferenceRESTClient, InferInput, InferRequest
    from kserve.inference_client import RESTConfig

    inputs = []
    for name, (datatype, array) in _columns(model, rows).items():
        tensor = InferInput(name=name, shape=[len(rows)], datatype=datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        assert await client.is_server_live(server.url)
        assert await client.is_model_ready(server.url, settings.default_model)
        response = await client.infer(
            server.url, InferRequest(model_name=settings.default_model, infer_inputs=inputs), model_name=settings.default_model
        )
    finally:
        await client.close()
    outputs = {o.name: o.data for o in response.outputs}
    expected = _expected(model, rows)
    assert list(outputs["predict"]) == [e["predict"] for e in expected]
    for label in model.classes:
        column = f"p{label}" if f"p{label}" in expected[0] else label
        assert list(outputs[label]) == pytest.approx([e[column] for e in expected], rel=0, abs=1e-12)


def _check_triton_result(result, model, rows):
    expected = _expected(model, rows)
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict").tolist()]
    assert labels == [e["predict"] for e in expected]
    for label in model.classes:
        column = f"p{label}" if f"p{label}" in expected[0] else label
        assert result.as_numpy(label).tolist() == pytest.approx([e[column] for e in expected], rel=0, abs=1e-12)


def test_triton_http_client_with_its_defaults_sends_binary_tensors(server, settings, model, rows):
    """``set_data_from_numpy`` and ``InferRequestedOutput`` default to the binary extension."""
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live()
    assert client.is_model_ready(settings.default_model)
    metadata = client.get_model_metadata(settings.default_model)
    assert [i["name"] for i in metadata["inputs"]] == model.feature_names

    inputs = []
    for name, (datatype, array) in _columns(model, rows).items():
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    # No outputs named: the client asks for all of them in binary (binary_data_output).
    result = client.infer(settings.default_model, inputs)
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] > 0
    _check_triton_result(result, model, rows)
    outputs = [triton.InferRequestedOutput(name) for name in ["predict", *model.classes]]
    _check_triton_result(client.infer(settings.default_model, inputs, outputs=outputs), model, rows)


def test_triton_http_client_in_json_gets_json(server, settings, model, rows):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    inputs = []
    for name, (datatype, array) in _columns(model, rows).items():
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in ["predict", *model.classes]]
    result = client.infer(settings.default_model, inputs, outputs=outputs)
    assert "data" in result.get_response()["outputs"][0]
    _check_triton_result(result, model, rows)


async def test_bad_tensors_get_the_protocols_400(server, settings, model):
    url = f"/v2/models/{settings.default_model}/infer"
    numeric = next(n for n in model.feature_names if not model.domains.get(n))
    bad_bodies = {
        "unknown input 'nope'": {"inputs": [{"name": "nope", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
        "does not match 1 values": {"inputs": [{"name": numeric, "shape": [2], "datatype": "FP64", "data": [1.0]}]},
        "datatype BYTES but the feature is numeric": {
            "inputs": [{"name": numeric, "shape": [1], "datatype": "BYTES", "data": ["x"]}]
        },
        "inputs.0.datatype": {"inputs": [{"name": numeric, "shape": [1], "datatype": "FLOAT", "data": [1.0]}]},
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for message, body in bad_bodies.items():
            response = await client.post(url, json=body)
            assert response.status_code == 400, response.text
            assert message in response.json()["error"]
        missing = await client.get("/v2/models/no-such-model")
        assert missing.status_code == 404 and "not found" in missing.json()["error"]
        stale = await client.post(
            f"/v2/models/{settings.default_model}/versions/99/infer",
            json={"inputs": [{"name": numeric, "shape": [1], "datatype": "FP64", "data": [1.0]}]},
        )
        assert stale.status_code == 404 and "version 99" in stale.json()["error"]
        one = {"name": numeric, "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}
        header = orjson.dumps({"inputs": [one]})
        for message, tail in {
            "only 8 remain": b"\0" * 8,
            "belong to no input": b"\0" * 24,
        }.items():
            response = await client.post(
                url, content=header + tail, headers={"Inference-Header-Content-Length": str(len(header))}
            )
            assert response.status_code == 400 and message in response.json()["error"], response.text


# -- gRPC ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grpc_server(server, settings, tmp_path_factory):
    """The predict function's gRPC target, as its h2c container runs it, on the same registry."""
    log = tmp_path_factory.mktemp("oip-grpc") / "predict-grpc.log"
    with_metrics = settings.model_copy(update={"grpc_metrics_port": free_port()})
    proc = FunctionProcess("predict-grpc", REPO / "functions" / "main.py", with_metrics, free_port(), log)
    proc.metrics_url = f"http://127.0.0.1:{with_metrics.grpc_metrics_port}/metrics"
    proc.start()
    yield proc
    proc.stop()


def _grpc_client(client, grpc_server, settings, model, rows):
    columns = {name: (datatype, array.tolist()) for name, (datatype, array) in _columns(model, rows).items()}
    job = {
        "client": client,
        "url": f"127.0.0.1:{grpc_server.port}",
        "model": settings.default_model,
        "columns": columns,
        "outputs": ["predict", *model.classes],
    }
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("v2_grpc_clients.py"))],
        input=json.dumps(job), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _check_outputs(outputs, model, rows):
    expected = _expected(model, rows)
    assert outputs["predict"] == [e["predict"] for e in expected]
    for label in model.classes:
        column = f"p{label}" if f"p{label}" in expected[0] else label
        assert outputs[label] == pytest.approx([e[column] for e in expected], rel=0, abs=1e-12)


def test_triton_grpc_client_gets_the_scorers_numbers(grpc_server, settings, model, rows):
    report = _grpc_client("triton", grpc_server, settings, model, rows)
    assert report["live"] and report["ready"]
    assert report["inputs"] == model.feature_names
    assert report["version"] == "1"
    _check_outputs(report["outputs"], model, rows)
    status, message = report["errors"]["unknown_model"]
    assert status == "StatusCode.NOT_FOUND" and "no-such-model" in message
    status, message = report["errors"]["unknown_input"]
    assert status == "StatusCode.INVALID_ARGUMENT" and "unknown input 'nope'" in message
    assert report["pinned"] == "1"
    metrics = httpx.get(grpc_server.metrics_url, timeout=5).text  # the same counters as REST
    rows_scored = next(line for line in metrics.splitlines() if line.startswith("converge_predict_rows_total "))
    assert float(rows_scored.split()[1]) >= 2 * len(rows)
    status, message = report["errors"]["unknown_version"]
    assert status == "StatusCode.NOT_FOUND" and "no version 99" in message


def test_grpc_health_check_answers_serving_once_the_model_is_loaded(grpc_server):
    """What a Kubernetes gRPC readiness probe calls (grpc.health.v1.Health/Check)."""
    import grpc

    from converge.serving.v2grpc import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.2)
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_kserve_grpc_client_gets_the_scorers_numbers(grpc_server, settings, model, rows):
    report = _grpc_client("kserve", grpc_server, settings, model, rows)
    assert report["live"] and report["ready"]
    assert report["version"] == "1"
    _check_outputs(report["outputs"], model, rows)


# -- version pinning ----------------------------------------------------------------------------
async def test_a_pinned_version_is_loaded_on_demand_and_answers_as_itself(server, settings, model, rows):
    """Version 2 (another MOJO, never promoted) answers requests that pin it; production is
    unchanged, and the answer names the version that scored."""
    other = CORPUS / "regression.zip"
    other_rows = read_rows(CORPUS / "regression.input.csv", 5)
    pool = await create_pool(settings, min_size=0)
    try:
        pinned = await register_model(settings, pool, settings.default_model, other.read_bytes(), other_rows)
    finally:
        await pool.close()
    other_model = load_mojo(other.read_bytes(), backend="native")
    expected = trainer_predictions(other.read_bytes(), other_rows)  # genmodel's answers
    base = f"/v2/models/{settings.default_model}"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        metadata = (await client.get(f"{base}/versions/{pinned.version}")).json()
        assert [i["name"] for i in metadata["inputs"]] == other_model.feature_names
        assert metadata["versions"] == [str(pinned.version)]
        native = await client.post(
            "/predict",
            json={
                "model": settings.default_model,
                "version": pinned.version,
                "instances": [{"features": r} for r in other_rows],
            },
        )
        assert native.status_code == 200, native.text
        assert native.json()["version"] == pinned.version
        labels = [p["label"] for p in native.json()["predictions"]]
        assert labels == pytest.approx([e["predict"] for e in expected], rel=0, abs=1e-9)

        production = await client.post(
            "/predict", json={"instances": [{"features": rows[0]}], "version": 1}
        )
        assert production.json()["version"] == 1
        unpinned = await client.post(f"{base}/infer", json=_v2_body(model, rows[:2]))
        assert unpinned.json()["model_version"] == "1"
        missing = await client.post("/predict", json={"instances": [{"features": rows[0]}], "version": 99})
        assert missing.status_code == 404 and "no version 99" in missing.json()["error"]


def _v2_body(model, rows):
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": datatype, "data": array.tolist()}
            for name, (datatype, array) in _columns(model, rows).items()
        ]
    }


async def test_a_model_with_its_own_output_columns_answers_each_as_a_tensor(server, settings):
    """PCA through Triton's HTTP client with its defaults: one FP64 output per component, equal
    to genmodel's; the metadata lists them."""
    import tritonclient.http as triton

    case = REPO / "tests" / "data" / "conformance" / "pca_standardized"
    mojo = (case / "model.zip").read_bytes()
    model = load_mojo(mojo, backend="native")
    rows = [r for r in read_rows(case / "input.csv", 40) if all(r.get(n) is not None for n in model.feature_names)][:10]
    assert rows
    name = f"pca-{uuid.uuid4().hex[:8]}"
    pool = await create_pool(settings, min_size=0)
    try:
        await register_model(settings, pool, name, mojo, rows[:4], promote=True)
    finally:
        await pool.close()
    expected = trainer_predictions(mojo, rows)
    columns = list(expected[0])

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert [o["name"] for o in client.get_model_metadata(name)["outputs"]] == columns
    inputs = []
    for feature, (datatype, array) in _columns(model, [
        {k: (str(v).removesuffix(".0") if model.domains.get(k) else v) for k, v in r.items()} for r in rows
    ]).items():
        tensor = triton.InferInput(feature, [len(rows)], datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    result = client.infer(name, inputs)
    for column in columns:
        assert result.as_numpy(column).tolist() == pytest.approx([e[column] for e in expected], rel=1e-12, abs=1e-12)
