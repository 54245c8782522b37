"""Canary and shadow rollouts through the real gateway (predict, reload and admin in one process)
on the real stack: the share, rollback of a failing candidate without a single failed answer,
promotion through the reload path, and a shadow rolled back on drift."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from pydantic import SecretStr

from converge.checkout import CORPUS
from converge.registry import Registry
from converge.rollouts import Rollouts
from converge.serving.web.gateway import create_gateway
from converge.serving.runtime import Runtime
from converge.serving.testing import read_rows, register_model, wait_until

pytestmark = pytest.mark.integration

TOKEN = "rollout-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(
        update={
            "default_model": f"canary-{uuid.uuid4().hex[:8]}",
            "admin_token": SecretStr(TOKEN),
            "registry_poll_s": 0.5,
        }
    )


@pytest.fixture(scope="module")
def rows():
    return read_rows(CORPUS / "binomial.input.csv", 40)


@pytest.fixture(scope="module")
async def client(settings, pool, rows):
    mojo = (CORPUS / "binomial.zip").read_bytes()
    await register_model(settings, pool, settings.default_model, mojo, rows[:6], promote=True)
    runtime = Runtime(settings)
    transport = httpx.ASGITransport(app=create_gateway(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
        yield client
    await runtime.close()


async def _start(client, settings, version, **body):
    response = await client.post(
        f"/admin/models/{settings.default_model}/rollout", headers=AUTH, json={"version": version, **body}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _drive(client, pool, settings, rows, rollout_id, most=5_000, callers=8):
    """Requests from ``callers`` concurrent clients until the rollout is decided (replicas pick
    a new rollout up within registry_poll_s, so the number needed varies); returns every answer."""
    answers = []
    for start in range(0, most, 50):
        for group in range(start, start + 50, callers):
            answers += await asyncio.gather(
                *(client.post("/predict", json={"features": rows[i % len(rows)]}) for i in range(group, group + callers))
            )
        latest = await Rollouts(pool).latest(settings.default_model)
        if latest.id == rollout_id and latest.state != "active":
            break
    return answers


async def _decided(pool, settings, rollout_id):
    async def check():
        latest = await Rollouts(pool).latest(settings.default_model)
        return latest if latest.id == rollout_id and latest.state != "active" else None

    return await wait_until(check, timeout=30)


async def test_a_canary_gets_its_share_of_10000_requests(client, settings, pool, rows):
    mojo = (CORPUS / "binomial.zip").read_bytes()
    candidate = await register_model(settings, pool, settings.default_model, mojo, rows[:6])
    rollout = await _start(client, settings, candidate.version, percent=10, thresholds={"min_requests": 1_000_000})
    versions = []
    for i in range(10_000):
        response = await client.post("/predict", json={"features": rows[i % len(rows)]})
        assert response.status_code == 200, response.text
        versions.append(response.json()["version"])
    share = 100 * versions.count(candidate.version) / len(versions)
    assert abs(share - 10) < 2, share
    assert set(versions) == {1, candidate.version}
    stopped = await client.delete(f"/admin/models/{settings.default_model}/rollout", headers=AUTH)
    assert stopped.json()["state"] == "stopped" and stopped.json()["id"] == rollout["id"]


async def test_a_failing_candidate_is_rolled_back_and_no_answer_fails(client, settings, pool, rows):
    """The candidate's artifact does not match its sha256: every load of it fails."""
    mojo = (CORPUS / "binomial.zip").read_bytes()
    broken = await register_model(settings, pool, settings.default_model, mojo, rows[:6])
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE model_versions SET sha256 = $3 WHERE name = $1 AND version = $2",
            settings.default_model, broken.version, "0" * 64,
        )  # fmt: skip
    rollout = await _start(
        client, settings, broken.version, percent=50, thresholds={"min_errors": 3, "max_error_rate": 0.02}
    )
    answers = await _drive(client, pool, settings, rows, rollout["id"])
    statuses = [a.status_code for a in answers]
    versions = {a.json().get("version") for a in answers}
    assert statuses.count(200) == len(statuses)
    assert broken.version not in versions  # (the stopped canary's v2 may answer until the next poll)
    decided = await _decided(pool, settings, rollout["id"])
    assert decided.state == "rolled_back" and "error rate" in decided.reason
    assert decided.stats["candidate"]["errors"] >= 3
    production = await Registry(pool).production(settings.default_model)
    assert production.version == 1


async def test_a_canary_within_its_thresholds_is_promoted_through_the_reload_path(client, settings, pool, rows):
    mojo = (CORPUS / "binomial.zip").read_bytes()
    candidate = await register_model(settings, pool, settings.default_model, mojo, rows[:6])
    rollout = await _start(client, settings, candidate.version, percent=50, thresholds={"min_requests": 60})
    answers = await _drive(client, pool, settings, rows, rollout["id"])
    assert all(a.status_code == 200 for a in answers)
    assert [a.json()["version"] for a in answers].count(candidate.version) >= 60
    decided = await _decided(pool, settings, rollout["id"])
    assert decided.state in ("promote", "promoted")

    async def promoted():
        latest = await Rollouts(pool).latest(settings.default_model)
        production = await Registry(pool).production(settings.default_model)
        return latest.state == "promoted" and production.version == candidate.version

    assert await wait_until(promoted, timeout=30)
    response = await client.post("/predict", json={"features": rows[0]})
    assert response.json()["version"] == candidate.version


async def test_a_shadow_answers_with_production_and_drift_rolls_it_back(client, settings, pool, rows):
    """The shadow is another MOJO (a regression on other features): its answers drift far."""
    production = await Registry(pool).production(settings.default_model)
    other = (CORPUS / "regression.zip").read_bytes()
    shadow = await register_model(
        settings, pool, settings.default_model, other, read_rows(CORPUS / "regression.input.csv", 4)
    )
    rollout = await _start(client, settings, shadow.version, mode="shadow", thresholds={"max_drift": 0.1})
    answers = await _drive(client, pool, settings, rows, rollout["id"])
    assert all(a.status_code == 200 and a.json()["version"] == production.version for a in answers)
    decided = await _decided(pool, settings, rollout["id"])
    assert decided.state == "rolled_back" and "drift" in decided.reason, decided
    assert decided.stats["shadow_gap"] > 0.1


async def test_a_separate_reload_function_promotes_on_predicts_signed_rollout_decided(settings, pool, rows):
    """As in a cluster: predict and reload are separate functions, and predict holds no publish
    key. A canary that met its thresholds reaches reload as a ``rollout.decided`` event signed
    with the rollout key (sent straight to reload's HTTP port, where a Broker would forward it);
    reload promotes what the rollouts table recorded. Unsigned, forged and replayed events
    change nothing."""
    import json
    import socket

    import uvicorn

    from converge.event_signing import signed_envelope
    from converge.serving.web.functions import build

    key = "rollout-key-for-this-test"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ours = settings.model_copy(update={
        "default_model": f"canary-ev-{uuid.uuid4().hex[:8]}", "rollout_key": SecretStr(key),
        "publish_key": SecretStr(""), "broker_url": f"http://127.0.0.1:{port}/events",
    })  # fmt: skip
    name = ours.default_model
    mojo = (CORPUS / "binomial.zip").read_bytes()
    await register_model(ours, pool, name, mojo, rows[:6], promote=True)
    candidate = await register_model(ours, pool, name, mojo, rows[:6])

    reload_runtime, predict_runtime = Runtime(ours), Runtime(ours)
    server = uvicorn.Server(uvicorn.Config(build("reload", reload_runtime), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until(lambda: _up(base), timeout=30)
        async with httpx.AsyncClient(base_url=base, timeout=60) as reload_fn, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build("predict", predict_runtime)), base_url="http://predict", timeout=60
        ) as predict_fn:
            started = await reload_fn.post(f"/admin/models/{name}/rollout", headers=AUTH,
                                           json={"version": candidate.version, "percent": 50,
                                                 "thresholds": {"min_requests": 40}})  # fmt: skip
            assert started.status_code == 200, started.text
            rollout_id = started.json()["id"]

            async def promoted():
                for i in range(16):
                    answer = await predict_fn.post("/predict", json={"features": rows[i % len(rows)]})
                    assert answer.status_code == 200, answer.text
                latest = await Rollouts(pool).latest(name)
                production = await Registry(pool).production(name)
                return latest.state == "promoted" and production.version == candidate.version

            assert await wait_until(promoted, timeout=60)

            def post(envelope):
                return reload_fn.post("/events", content=json.dumps(envelope),
                                      headers={"content-type": "application/cloudevents+json"})

            data = {"name": name, "rollout_id": rollout_id}
            unsigned = {k: v for k, v in signed_envelope(key, "rollout.decided", "attacker", data, "e1").items()
                        if k != "convergesig"}  # fmt: skip
            assert (await post(unsigned)).status_code == 401
            forged = signed_envelope("not-the-key", "rollout.decided", "attacker", data, "e2")
            assert (await post(forged)).status_code == 403
            replayed = await post(signed_envelope(key, "rollout.decided", "converge/predict", data, "e3"))
            assert replayed.status_code == 200 and replayed.json()["outcome"] == "ignored"
            other = {"name": "someone-else", "rollout_id": rollout_id}
            assert (await post(signed_envelope(key, "rollout.decided", "converge/predict", other, "e4"))).status_code == 404
            assert (await Registry(pool).production(name)).version == candidate.version
    finally:
        server.should_exit = True
        await serving
        await predict_runtime.close()
        await reload_runtime.close()


async def _up(base: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as probe:
            return (await probe.get(f"{base}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False
