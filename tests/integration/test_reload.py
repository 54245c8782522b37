"""Reload: verify, validate, promote, fan out; Scenario B (zero-downtime reloads under load).

A reload function and a predict function run as separate functions-framework processes, so the
new version reaches predict the way it does on a cluster: the Redis reload channel, or registry
polling when the message was missed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import httpx
import pytest
from pydantic import SecretStr

from converge.checkout import CORPUS, REPO
from converge.artifacts import ArtifactStore, model_key
from converge.event_signing import signed_envelope, signed_headers
from converge.registry import Registry
from converge.serving.testing import (
    FunctionProcess,
    read_rows,
    register_model,
    trainer_predictions,
    wait_until,
)
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration

SOURCE = REPO / "functions" / "main.py"
TOKEN = "reload-test-token"


@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(
        update={
            "default_model": f"reload-{uuid.uuid4().hex[:8]}",
            # Far longer than the test: only the Redis channel can move these replicas.
            "registry_poll_s": 600.0,
            "admin_token": SecretStr(TOKEN),
        }
    )


@pytest.fixture(scope="module")
def models():
    """Two different artifacts to alternate: a binomial and a regression stacked ensemble."""
    out = {}
    for name in ("binomial", "regression"):
        out[name] = (
            (CORPUS / f"{name}.zip").read_bytes(),
            read_rows(CORPUS / f"{name}.input.csv", 8),
        )
    return out


@pytest.fixture(scope="module")
async def servers(settings, pool, models, tmp_path_factory):
    mojo, rows = models["binomial"]
    await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    logs = tmp_path_factory.mktemp("reload")
    ff = "functions-framework"
    reload_fn = FunctionProcess("reload", SOURCE, settings, free_port(), logs / "reload.log", wrapper=ff)
    predict_fn = FunctionProcess(
        "predict", SOURCE, settings, free_port(), logs / "predict.log", wrapper=ff
    )
    reload_fn.start()
    predict_fn.start()
    yield reload_fn, predict_fn
    predict_fn.stop()
    reload_fn.stop()


@pytest.fixture
async def clients(servers):
    reload_fn, predict_fn = servers
    async with (
        httpx.AsyncClient(base_url=reload_fn.url, timeout=60.0) as reload_client,
        httpx.AsyncClient(base_url=predict_fn.url, timeout=10.0) as predict_client,
    ):

        async def ready():
            return (await predict_client.get("/readyz")).status_code == 200

        await wait_until(ready, timeout=60)
        yield reload_client, predict_client


def published(settings, name: str, version: int, event_id: str | None = None) -> dict:
    """A structured-mode ``model.published`` signed with the publish key, as training sends it."""
    return signed_envelope(
        settings.publish_key.get_secret_value(),
        "model.published",
        "tests/training",
        {"name": name, "version": version},
        event_id or uuid.uuid4().hex,
    )


async def served_version(predict_client, features) -> int:
    response = await predict_client.post("/predict", json={"features": features})
    assert response.status_code == 200, response.text
    return response.json()["version"]


async def test_scenario_b_zero_downtime_reloads(clients, settings, pool, models):
    """100 Hz of predictions while versions alternate; not one non-200, versions never go back."""
    reload_client, predict_client = clients
    name = settings.default_model
    bin_rows, reg_rows = models["binomial"][1], models["regression"][1]
    # The union of both models' inputs: each model ignores the columns it does not know.
    features = {**reg_rows[0], **bin_rows[0]}
    start_version = await served_version(predict_client, features)

    results: list[tuple[int, int | None]] = []  # (status, version) in send order
    stop = asyncio.Event()

    async def load() -> None:
        """One request every 10 ms, each sent after the previous answer, so the order in which
        the server read the model is the order of this list."""
        period, i = 0.01, 0
        begin = time.monotonic()
        while not stop.is_set():
            # A different row each time, so most requests are real cache misses.
            body = {"features": {**features, "PSA": float(i % 500) + 0.5}}
            try:
                r = await predict_client.post("/predict", json=body)
                results.append((r.status_code, r.json().get("version")))
            except httpx.HTTPError as exc:
                results.append((0, None))
                print("request failed:", repr(exc))
            i += 1
            await asyncio.sleep(max(0.0, begin + i * period - time.monotonic()))

    generator = asyncio.create_task(load())
    promoted = [start_version]
    try:
        for kind in ("regression", "binomial", "regression", "binomial"):
            mojo, rows = models[kind]
            mv = await register_model(settings, pool, name, mojo, rows)
            r = await reload_client.post(
                "/events",
                json=published(settings, name, mv.version),
                headers={"content-type": "application/cloudevents+json"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["stage"] == "production"
            promoted.append(mv.version)

            async def swapped(v=mv.version):
                return await served_version(predict_client, features) == v

            await wait_until(swapped, timeout=30, interval=0.05)
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await generator

    assert len(results) > 100
    statuses = [s for s, _ in results]
    assert statuses.count(200) == len(statuses), {s for s in statuses if s != 200}
    versions = [v for _, v in results]
    assert set(versions) <= set(promoted)
    assert all(a <= b for a, b in itertools.pairwise(versions)), "version went back"
    assert versions[-1] == promoted[-1]
    assert len(set(versions)) >= 3, "reloads did not take effect during the load"


async def _production(pool, name):
    return (await Registry(pool).production(name)).version


@pytest.mark.parametrize("fault", ["sha256-mismatch", "not-a-mojo", "predictions-differ"])
async def test_bad_artifact_is_rejected_and_old_version_keeps_serving(
    clients, settings, pool, models, fault
):
    reload_client, predict_client = clients
    name = settings.default_model
    mojo, rows = models["binomial"]
    features = rows[1]
    before = await _production(pool, name)
    assert await served_version(predict_client, features) == before

    if fault == "sha256-mismatch":
        mv = await register_model(settings, pool, name, mojo, rows)
        # Someone overwrites the object after registration.
        other = (CORPUS / "regression.zip").read_bytes()
        await asyncio.to_thread(ArtifactStore(settings).put, model_key(name, mv.version), other)
    elif fault == "not-a-mojo":
        junk = b"PK\x03\x04 this is not a zip archive" + bytes(200)
        mv = await register_model(
            settings, pool, name, junk, rows, predictions=[{"predict": "0"}] * len(rows)
        )
    else:
        preds = trainer_predictions(mojo, rows)
        preds[2] = dict(preds[2], p1=preds[2]["p1"] + 1e-6, p0=preds[2]["p0"] - 1e-6)
        mv = await register_model(settings, pool, name, mojo, rows, predictions=preds)

    r = await reload_client.post(
        "/admin/reload-model",
        json={"name": name, "version": mv.version},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 422, r.text
    assert "artifact rejected" in r.json()["error"]
    assert await _production(pool, name) == before
    assert (await Registry(pool).get(name, mv.version)).stage == "staging"
    assert await served_version(predict_client, features) == before


async def test_binary_cloudevent_for_an_unknown_version_is_a_404(clients, settings):
    reload_client, _ = clients
    key = settings.publish_key.get_secret_value()
    data = {"name": settings.default_model, "version": 999}
    r = await reload_client.post(
        "/events", json=data, headers=signed_headers(key, "model.published", "tests", data, "x1")
    )
    assert r.status_code == 404, r.text
    data = {"name": settings.default_model, "version": 1}
    wrong_type = await reload_client.post(
        "/events", json=data, headers=signed_headers(key, "features.ingest", "t", data, "2")
    )
    assert wrong_type.status_code == 400


async def test_replica_that_missed_the_message_catches_up_by_polling(
    servers, settings, pool, models, tmp_path
):
    """Promote in the registry directly: no Redis message, only the poll can tell the replica."""
    polling = settings.model_copy(update={"registry_poll_s": 0.5})
    log = tmp_path / "predict-polling.log"
    replica = FunctionProcess("predict", SOURCE, polling, free_port(), log).start()
    try:
        async with httpx.AsyncClient(base_url=replica.url, timeout=10.0) as client:

            async def ready():
                return (await client.get("/readyz")).status_code == 200

            await wait_until(ready, timeout=60)
            name = settings.default_model
            mojo, rows = models["binomial"]
            mv = await register_model(settings, pool, name, mojo, rows, promote=True)

            async def caught_up():
                return await served_version(client, rows[0]) == mv.version

            await wait_until(caught_up, timeout=30, interval=0.2)
    finally:
        replica.stop()
