"""The predict function under functions-framework, against the real local stack.

Covers readiness (false until the production model is loaded), single and batch scoring that
matches the trainer's answers, the cache flag, entity lookups, CloudEvents, bad input (4xx with
the field named, never 500) and a Redis outage (no cache, still 200).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from converge.checkout import CONFORMANCE, CORPUS, REPO
from converge.contracts import FeatureVector
from converge.features import FeatureStore
from converge.resilience import CircuitBreaker
from converge.serving.online import OnlineFeatures
from converge.serving.testing import (
    FunctionProcess,
    read_rows,
    register_model,
    trainer_predictions,
    wait_until,
)
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(
        update={
            "default_model": f"pred-{uuid.uuid4().hex[:8]}",
            "registry_poll_s": 0.5,
            "admin_token": SecretStr("predict-test-token"),
        }
    )


@pytest.fixture(scope="module")
def mojo() -> bytes:
    return (CORPUS / "binomial.zip").read_bytes()


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return read_rows(CORPUS / "binomial.input.csv", 40)


@pytest.fixture(scope="module")
async def server(settings, pool, mojo, rows, tmp_path_factory):
    """Started before any model exists, so the first test sees readiness go from false to true."""
    log = tmp_path_factory.mktemp("predict") / "predict.log"
    # through functions-framework's aio wrapper; the reliability tests run the image's default
    proc = FunctionProcess(
        "predict", REPO / "functions" / "main.py", settings, free_port(), log,
        wrapper="functions-framework",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def client(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        yield client


async def test_ready_only_once_the_production_model_is_loaded(client, settings, pool, mojo, rows):
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 503
    await register_model(settings, pool, settings.default_model, mojo, rows[:10], promote=True)

    async def ready():
        return (await client.get("/readyz")).status_code == 200

    await wait_until(ready, timeout=30)


async def test_single_row_matches_trainer_and_is_cached(client, mojo, rows, settings):
    expected = trainer_predictions(mojo, rows[:1])[0]
    first = await client.post("/", json={"features": rows[0]})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == settings.default_model and body["version"] == 1
    [pred] = body["predictions"]
    assert pred["label"] == expected["predict"]
    assert pred["probabilities"]["1"] == pytest.approx(expected["p1"], rel=0, abs=1e-12)
    assert pred["cached"] is False
    assert first.headers["x-request-id"]

    async def cached():
        again = (await client.post("/predict", json={"features": rows[0]})).json()
        return again["predictions"][0]["cached"] and again

    again = await wait_until(cached, timeout=5)
    assert again["predictions"][0]["probabilities"] == pred["probabilities"]


async def test_batch_matches_trainer_in_order(client, mojo, rows):
    expected = trainer_predictions(mojo, rows)
    response = await client.post("/predict", json={"instances": [{"features": r} for r in rows]})
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    assert [p["label"] for p in got] == [e["predict"] for e in expected]
    # genmodel's Math.exp and ours may differ in the last bit
    assert [p["probabilities"]["0"] for p in got] == pytest.approx([e["p0"] for e in expected], rel=0, abs=1e-12)


async def test_a_clustering_model_answers_with_its_cluster(client, settings, pool):
    """A model without classes or a single value (KMeans): the answer carries genmodel's output
    columns, the cluster is the label, and there are no probabilities."""
    case = REPO / "tests" / "data" / "conformance" / "kmeans_standardized"
    kmeans = (case / "model.zip").read_bytes()
    some = read_rows(case / "input.csv", 12)
    name = f"clusters-{uuid.uuid4().hex[:8]}"
    await register_model(settings, pool, name, kmeans, some[:6], promote=True)
    expected = trainer_predictions(kmeans, some)
    response = await client.post(
        "/predict", json={"model": name, "instances": [{"features": r} for r in some]}
    )
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    assert [p["outputs"] for p in got] == expected
    assert [p["label"] for p in got] == [e["cluster"] for e in expected]
    assert all(p["probabilities"] is None for p in got)

    async def cached():
        again = (await client.post("/predict", json={"model": name, "features": some[0]})).json()
        return again["predictions"][0]["cached"] and again

    again = await wait_until(cached, timeout=5)
    assert again["predictions"][0]["outputs"] == expected[0]


async def test_entity_features_come_from_the_feature_store(client, pool, rows, mojo):
    entity = f"patient-{uuid.uuid4().hex[:6]}"
    features = {k: v for k, v in rows[3].items()}
    await FeatureStore(pool).upsert(
        [FeatureVector(entity_id=entity, event_time="2024-05-01T00:00:00Z", features=features)]
    )
    expected = trainer_predictions(mojo, [features])[0]
    response = await client.post("/predict", json={"entity_id": entity})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["probabilities"]["1"] == pytest.approx(expected["p1"], rel=0, abs=1e-12)

    missing = await client.post("/predict", json={"entity_id": "nobody-" + entity})
    assert missing.status_code == 404
    assert "entity_id" in missing.json()["error"]


async def test_entity_features_from_the_online_copy(client, settings, rows, mojo):
    """An entity only Redis knows (as right after an ingest): no feature store read needed."""
    entity = f"online-only-{uuid.uuid4().hex[:6]}"
    features = dict(rows[11])
    redis = aioredis.from_url(settings.redis_url)
    try:
        written = await OnlineFeatures(redis, CircuitBreaker("redis"), 60).refresh(
            [FeatureVector(entity_id=entity, event_time="2024-06-01T00:00:00Z", features=features)]
        )
        assert written
    finally:
        await redis.aclose()
    expected = trainer_predictions(mojo, [features])[0]
    response = await client.post("/predict", json={"instances": [{"entity_id": entity}]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["probabilities"]["1"] == pytest.approx(expected["p1"], rel=0, abs=1e-12)


async def test_cloudevents_binary_and_structured(client, rows):
    binary = await client.post(
        "/events",
        json={"features": rows[5]},
        headers={
            "ce-specversion": "1.0",
            "ce-type": "predict.request",
            "ce-source": "tests",
            "ce-id": "1",
        },
    )
    assert binary.status_code == 200, binary.text
    structured = await client.post(
        "/events",
        json={
            "specversion": "1.0",
            "type": "predict.request",
            "source": "tests",
            "id": "2",
            "datacontenttype": "application/json",
            "data": {"features": rows[5]},
        },
        headers={"content-type": "application/cloudevents+json"},
    )
    assert structured.status_code == 200, structured.text
    assert (
        structured.json()["predictions"][0]["probabilities"]
        == binary.json()["predictions"][0]["probabilities"]
    )
    broken = await client.post("/events", json={"features": rows[5]}, headers={"ce-specversion": "1.0"})
    assert broken.status_code == 400, broken.text


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        (b"{not json", {}, 400, None),
        (b"", {}, 400, None),
        (b'{"instances": []}', {}, 422, "instances"),
        (b'{"features": {"AGE": 1}, "entity_id": "x"}', {}, 422, None),
        (b'{"features": {"AGE": [1, 2]}}', {}, 422, "features"),
        (b'{"model": "../etc", "features": {"AGE": 1}}', {}, 422, "model"),
        (b'{"model": "no-such-model", "features": {"AGE": 1}}', {}, 404, "model"),
        (b'{"features": {"AGE": 1}}', {"content-type": "text/plain"}, 415, None),
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field(client, body, headers, status, field):
    headers = {"content-type": "application/json", **headers}
    response = await client.post("/predict", content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert "Traceback" not in response.text
    if field:
        assert field in error["error"]
    if status == 422 and field in {"instances", "features", "model"}:
        assert any(field in d["loc"] for d in error["detail"])


async def test_body_size_limit(client, settings):
    big = b'{"features": {"x": "' + b"a" * settings.max_body_bytes + b'"}}'
    response = await client.post(
        "/predict", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_redis_down_still_answers_without_cache(client, redis_server, rows):
    features = dict(rows[7], AGE=41.5)
    redis_server.stop()
    try:
        for _ in range(3):
            response = await client.post("/predict", json={"features": features})
            assert response.status_code == 200, response.text
            assert response.json()["predictions"][0]["cached"] is False
    finally:
        redis_server.start()

    async def cached_again():
        r = await client.post("/predict", json={"features": features})
        assert r.status_code == 200
        return r.json()["predictions"][0]["cached"]

    await wait_until(cached_again, timeout=20, interval=0.3)


async def test_metrics(client):
    text = (await client.get("/metrics")).text
    for name in (
        "converge_predict_latency_seconds_bucket",
        "converge_cache_hits_total",
        "converge_cache_misses_total",
        "converge_model_version",
        "converge_model_reloads_total",
    ):
        assert name in text


async def test_database_down_features_still_score_entities_are_503(client, pgbouncer, rows):
    """The loaded model needs no database; entity lookups and unloaded models answer 503."""
    pgbouncer.stop()
    try:
        by_features = await client.post("/predict", json={"features": dict(rows[9], AGE=33.0)})
        assert by_features.status_code == 200, by_features.text
        by_entity = await client.post("/predict", json={"entity_id": "someone-not-cached"})
        assert by_entity.status_code == 503, by_entity.text
        other = await client.post("/predict", json={"model": "not-loaded", "features": rows[9]})
        assert other.status_code == 503, other.text
    finally:
        pgbouncer.start()


def _conformance_case(name: str, n: int) -> tuple[bytes, list[dict], tuple, tuple, tuple]:
    """A corpus model, its first ``n`` input rows (missing cells left out, as PredictCsv does),
    genmodel's own contributions for them (GenmodelApi.java), PredictCsv's leaf paths and
    genmodel's leaf ids, each as (column names, rows)."""
    import csv

    case = CONFORMANCE / name

    def read(file: str) -> tuple[list[str], list[list[str]]]:
        with open(case / file, newline="") as f:
            header, *rows = list(csv.reader(f))
        return header, rows[:n]

    columns, cells = read("input.csv")
    names, values = read("expected_contributions.csv")
    records = [{c: v for c, v in zip(columns, row) if v != ""} for row in cells]
    shap = (names, [[float.fromhex(v) for v in row] for row in values])
    ids, id_rows = read("expected_leaf_ids.csv")
    return ((case / "model.zip").read_bytes(), records, shap, read("expected_leaves.csv"),
            (ids, [[int(v) for v in row] for row in id_rows]))


async def test_explain_and_leaves_answer_genmodels_values_on_both_apis(client, settings, pool):
    mojo, records, (names, expected), (trees, paths), (_, node_ids) = _conformance_case(
        "shap_gbm_binomial", 12)
    name = f"shap-{uuid.uuid4().hex[:6]}"
    await register_model(settings, pool, name, mojo, records, promote=True)
    body = {"model": name, "explain": True, "leaf_assignment": True, "leaf_node_ids": True,
            "instances": [{"features": r} for r in records]}
    response = await client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    got = [p["contributions"] for p in response.json()["predictions"]]
    assert [list(c) for c in got] == [names] * len(records)
    assert [[c[n] for n in names] for c in got] == expected
    leaves = [p["leaf_assignment"] for p in response.json()["predictions"]]
    assert [[leaf[t] for t in trees] for leaf in leaves] == paths
    ids = [p["leaf_node_ids"] for p in response.json()["predictions"]]
    assert [[leaf[t] for t in trees] for leaf in ids] == node_ids
    # the same rows again come from the cache, their contributions still computed
    again = (await client.post("/predict", json=body)).json()["predictions"]
    assert [p["contributions"] for p in again] == got

    features = [n for n in names if n != "BiasTerm"]
    inputs = [
        {"name": f, "shape": [len(records)], "datatype": "BYTES" if f.startswith("c") else "FP64",
         "data": [(r.get(f) if f.startswith("c") else float(r[f]) if f in r else None) for r in records]}
        for f in features
    ]  # fmt: skip
    v2 = await client.post(f"/v2/models/{name}/infer", json={
        "inputs": inputs, "outputs": [{"name": "predict"}, {"name": "contributions"},
                                      {"name": "leaf_assignment"}, {"name": "leaf_node_ids"}]})
    assert v2.status_code == 200, v2.text
    predict, shap, leaf, leaf_ids = v2.json()["outputs"]
    assert predict["name"] == "predict" and predict["shape"] == [len(records)]
    assert shap["name"] == "contributions" and shap["shape"] == [len(records), len(names)]
    assert shap["parameters"]["columns"] == names
    assert shap["data"] == [v for row in expected for v in row]
    assert leaf["datatype"] == "BYTES" and leaf["parameters"]["columns"] == trees
    assert leaf["data"] == [p for row in paths for p in row]
    assert leaf_ids["datatype"] == "INT64" and leaf_ids["parameters"]["columns"] == trees
    assert leaf_ids["data"] == [i for row in node_ids for i in row]


async def test_calibrated_probabilities_answer_genmodels_on_both_apis(client, settings, pool, rows):
    """A GBM trained with Platt calibration: ``"calibrated": true`` adds genmodel's
    ``cal_<class>`` values (PredictCsv --predictCalibrated); the answer stays uncalibrated."""
    import csv

    case = CONFORMANCE / "gbm_calibrated_platt"
    with open(case / "input.csv", newline="") as f:
        records = [{k: v for k, v in r.items() if v != ""} for r in list(csv.DictReader(f))[:10]]
    with open(case / "expected.csv", newline="") as f:
        header, *expected = list(csv.reader(f))[:11]
    at = {h: i for i, h in enumerate(header)}
    name = f"cal-{uuid.uuid4().hex[:6]}"
    await register_model(settings, pool, name, (case / "model.zip").read_bytes(), records, promote=True)
    response = await client.post("/predict", json={
        "model": name, "calibrated": True, "instances": [{"features": r} for r in records]})
    assert response.status_code == 200, response.text
    for p, want in zip(response.json()["predictions"], expected, strict=True):
        assert p["label"] == want[0]
        assert p["probabilities"]["yes"] == float.fromhex(want[at["yes"]])
        assert p["calibrated_probabilities"] == {
            c: float.fromhex(want[at[f"cal_{c}"]]) for c in ("no", "yes")}

    inputs = [
        {"name": f, "shape": [len(records)], "datatype": "BYTES" if f.startswith("c") else "FP64",
         "data": [(r.get(f) if f.startswith("c") else float(r[f]) if f in r else None) for r in records]}
        for f in ("x1", "x2", "c1", "x3", "c2")
    ]  # fmt: skip
    v2 = await client.post(f"/v2/models/{name}/infer", json={
        "inputs": inputs, "outputs": [{"name": "calibrated_probabilities"}]})
    assert v2.status_code == 200, v2.text
    [tensor] = v2.json()["outputs"]
    assert tensor["shape"] == [len(records), 2] and tensor["parameters"]["columns"] == ["no", "yes"]
    assert tensor["data"] == [float.fromhex(w[at[f"cal_{c}"]]) for w in expected for c in ("no", "yes")]

    uncalibrated = await client.post("/predict", json={"calibrated": True, "features": rows[0]})
    assert uncalibrated.status_code == 422, uncalibrated.text
    assert uncalibrated.json()["error"].startswith("calibrated:")


async def test_glrm_reconstruction_is_served_on_both_apis(client, settings, pool, rows):
    """``"reconstruct": true`` adds a GLRM's reconstruction under PredictCsv --glrmReconstruct's
    column names. A GLRM's answers depend on the rows the loaded model scored before (genmodel
    seeds each row from a counter), so the corpus's values are checked in tests/mojo; here, the
    columns, and that each categorical is rebuilt as one of its levels."""
    import csv

    case = CONFORMANCE / "glrm_reconstruct_ordinal"
    with open(case / "input.csv", newline="") as f:
        records = [{k: v for k, v in r.items() if v != ""} for r in list(csv.DictReader(f))[:8]]
    with open(case / "expected.csv", newline="") as f:
        header = next(csv.reader(f))
    name = f"glrm-{uuid.uuid4().hex[:6]}"
    await register_model(settings, pool, name, (case / "model.zip").read_bytes(), records, promote=True)
    response = await client.post("/predict", json={
        "model": name, "reconstruct": True, "instances": [{"features": r} for r in records]})
    assert response.status_code == 200, response.text
    for p in response.json()["predictions"]:
        assert list(p["reconstruction"]) == header
        assert p["reconstruction"]["reconstr_c1"] in (0.0, 1.0, 2.0, 3.0)
    v2 = await client.post(f"/v2/models/{name}/infer", json={
        "inputs": [{"name": "x1", "shape": [1], "datatype": "FP64", "data": [0.5]}],
        "outputs": [{"name": "reconstruction"}]})
    assert v2.status_code == 200, v2.text
    [tensor] = v2.json()["outputs"]
    assert tensor["shape"] == [1, len(header)] and tensor["parameters"]["columns"] == header

    not_glrm = await client.post("/predict", json={"reconstruct": True, "features": rows[0]})
    assert not_glrm.status_code == 422, not_glrm.text
    assert not_glrm.json()["error"].startswith("reconstruct:")


async def test_explain_on_a_model_without_contributions_is_a_422_naming_explain(client, rows):
    response = await client.post("/predict", json={"explain": True, "features": rows[0]})
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("explain:")
