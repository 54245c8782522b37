"""Faults under load: each dependency (and predict itself) dies and comes back while predict
serves explicit-feature requests and ingest receives a steady stream of CloudEvents.

Why: the design promises that a dead cache, database or object store never turns into a lost
prediction, and that ingest acknowledges only what it stored, so that redelivery (Knative's
retry) ends with every event stored exactly once. Loads are modest (60 predictions/s, 10 events/s
of 5 vectors) and each scenario is bounded in time; ``bench_reliability.py`` runs the same
scenario and writes the numbers to RELIABILITY.md. H2O dying during training is covered by
``tests/integration/test_training.py::test_h2o_dying_mid_job_fails_the_run_and_registers_nothing``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest
from _load import CLIENT_LIMITS, EventStream, fault_run, httpx_predict, predict_bodies
from reliability_support import INGEST_TOKEN, TOKEN, log_problems, wait_ready

from converge.registry import Registry
from converge.serving.testing import register_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def functions(settings, pool, corpus, start_function):
    mojo, rows = corpus["binomial"]
    await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    predict = start_function("predict", settings)
    ingest = start_function("ingest", settings)
    reload_fn = start_function("reload", settings)
    await wait_ready(predict.url)
    return {"predict": predict, "ingest": ingest, "reload": reload_fn}


@pytest.fixture
async def clients(functions):
    async with (
        httpx.AsyncClient(
            base_url=functions["predict"].url, timeout=10.0, limits=CLIENT_LIMITS
        ) as predict,
        httpx.AsyncClient(
            base_url=functions["ingest"].url, timeout=10.0, limits=CLIENT_LIMITS
        ) as ingest,
        httpx.AsyncClient(
            base_url=functions["reload"].url,
            timeout=30.0,
            headers={"authorization": f"Bearer {TOKEN}"},
        ) as reload_client,
    ):
        yield predict, ingest, reload_client


def _service(request, fault: str, functions):
    """Blocking stop and start of the thing that fails; predict counts as up once it is ready."""
    if fault == "predict":
        fn = functions["predict"]

        def start() -> None:
            fn.start()
            deadline = time.monotonic() + 60
            while httpx.get(fn.url + "/readyz", timeout=5).status_code != 200:
                assert time.monotonic() < deadline, "predict never became ready again"
                time.sleep(0.05)

        return fn.stop, start
    fixture = {"redis": "redis_server", "pgbouncer": "pgbouncer", "postgres": "postgres"}
    service = request.getfixturevalue(fixture.get(fault, "s3_server"))
    return service.stop, service.start


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["redis", "pgbouncer", "postgres", "s3", "predict"])
async def test_fault_under_load_loses_no_prediction_and_no_event(
    request, fault, functions, clients, corpus, postgres
):
    predict_client, ingest_client, _ = clients
    _, rows = corpus["binomial"]
    bodies = predict_bodies(rows, "PSA", 4000)
    stream = EventStream(ingest_client, INGEST_TOKEN)
    stop, start = _service(request, fault, functions)

    result = await fault_run(
        fault,
        stop,
        start,
        predict=httpx_predict(predict_client, bodies),
        ingest=stream,
        direct_dsn=postgres.dsn,
    )
    print(result.row())

    assert result.settled, f"streams never ran clean again after the restart: {result.row()}"
    assert result.acked_missing == 0, "ingest acknowledged vectors it had not stored"
    assert result.lost == 0 and result.doubled == 0, "not exactly once after redelivery"
    assert result.predict_sent > 100 and result.ingest_sent > 20
    if fault == "predict":
        assert result.predict_failed > 0  # the only replica was down: the stream must notice
        assert result.ingest_failed == 0
    else:
        # Explicit features need no cache, database or store: not one failed prediction.
        assert result.predict_failed == 0, result.failure_statuses
    if fault in ("redis", "s3"):
        assert result.ingest_failed == 0, result.failure_statuses
    if fault in ("postgres", "pgbouncer"):
        # A database fault is a retryable 503 (Knative redelivers), never a 500 or a hang-up.
        assert result.ingest_failed > 0
        assert set(result.failure_statuses) == {503}, result.failure_statuses
    for fn in functions.values():
        assert log_problems(fn) == []


async def test_reload_during_s3_outage_is_retryable_and_keeps_serving(
    functions, clients, settings, pool, corpus, s3_server
):
    """A reload while the store is down answers 503 and changes nothing; retried later, it works."""
    predict_client, _, reload_client = clients
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    registry = Registry(pool)
    before = (await registry.production(name)).version
    mv = await register_model(settings, pool, name, mojo, rows)
    s3_server.stop()
    try:
        r = await reload_client.post(
            "/admin/reload-model", json={"name": name, "version": mv.version}
        )
        assert r.status_code == 503, r.text
        assert (await registry.production(name)).version == before
        p = await predict_client.post("/predict", json={"features": rows[0]})
        assert p.status_code == 200 and p.json()["version"] == before
    finally:
        s3_server.start()
    r = await reload_client.post("/admin/reload-model", json={"name": name, "version": mv.version})
    assert r.status_code == 200, r.text
    assert (await registry.production(name)).version == mv.version


async def test_unknown_model_while_the_database_is_down_is_a_503(
    functions, clients, pgbouncer, corpus
):
    """A model this replica does not serve yet needs the registry; without it, retry later (503),
    while the model it does serve keeps answering."""
    predict_client, _, _ = clients
    rows = corpus["binomial"][1]
    pgbouncer.stop()
    try:
        r = await predict_client.post(
            "/predict", json={"model": "not-loaded-here", "features": rows[0]}
        )
        assert r.status_code == 503, r.text
        r = await predict_client.post("/predict", json={"features": rows[0]})
        assert r.status_code == 200, r.text
    finally:
        pgbouncer.start()
    r = await predict_client.post(
        "/predict", json={"model": "not-loaded-here", "features": rows[0]}
    )
    assert r.status_code == 404, r.text


async def test_sigterm_lets_the_requests_in_flight_finish(settings, functions, start_function):
    """Knative scales down with SIGTERM: batches being scored at that moment still get their 200."""
    fn = start_function("predict", settings)
    await wait_ready(fn.url)
    batch = {"instances": [{"features": {"AGE": 60, "PSA": i / 7}} for i in range(10_000)]}
    async with httpx.AsyncClient(base_url=fn.url, timeout=60.0) as client:
        loop = asyncio.get_running_loop()
        in_flight = [loop.create_task(client.post("/predict", json=batch)) for _ in range(4)]
        await asyncio.sleep(0.3)  # the bodies are sent and scoring has begun
        assert not all(t.done() for t in in_flight), "all batches finished before the signal"
        os.killpg(fn.proc.pid, signal.SIGTERM)
        answers = await asyncio.gather(*in_flight)
    assert [r.status_code for r in answers] == [200] * 4, answers[0].text[:300]
    assert all(len(r.json()["predictions"]) == 10_000 for r in answers)
    await asyncio.to_thread(fn.proc.wait, 30)
