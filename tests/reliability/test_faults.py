"""Faults under load: each dependency (and the function processes themselves) fails in every way
we know of and comes back, while predict serves explicit-feature requests and ingest receives a
steady stream of CloudEvents.

Fault kinds (``benchmarks/_faults.py``): a graceful stop, SIGKILL, SIGSTOP (longer than every
timeout on the request paths) and a slow, lossy link (50 ms delay and 5 % loss each way,
``benchmarks/_link.py``). Targets: Redis, PgBouncer, Postgres (fsync on: a SIGKILL must not lose
an acknowledged commit), S3, and the predict and ingest processes.

Why: the design promises that a dead or hung cache, database or object store never turns into a
lost prediction, that ingest acknowledges only what it stored, so that redelivery (Knative's
retry) ends with every event stored exactly once, and that a hung database is answered with a
retryable 503 instead of a request that hangs as long as the database does. Loads are modest (60
predictions/s, 10 events/s of 5 vectors) and each scenario is bounded in time;
``bench_reliability.py`` runs the same scenarios longer and writes the numbers to RELIABILITY.md.
H2O faults during training are in ``tests/integration/test_training.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import httpx
import pytest
from _faults import KINDS, process_tree, scenario, signal_tree
from _link import BehindLink, Link, url_via
from _load import CLIENT_LIMITS, EventStream, fault_run, httpx_predict, predict_bodies
from pydantic import SecretStr
from reliability_support import INGEST_TOKEN, TOKEN, log_problems, wait_ready

from converge.contracts import FeatureVector
from converge.db import create_pool
from converge.features import FeatureStore
from converge.registry import Registry
from converge.serving.testing import migrate, register_model
from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration

TARGETS = ("redis", "pgbouncer", "postgres", "s3", "functions")


@pytest.fixture(scope="module")
def durable(tmp_path_factory, redis_server, s3_server):
    """This module's own database path, Postgres with fsync on and PgBouncer, plus a second
    PgBouncer that reaches Postgres over a link, and links to every dependency."""
    work = tmp_path_factory.mktemp("durable")
    started: list = []

    def up(thing):
        started.append(thing)
        return thing.start()

    try:
        pg = up(Postgres(work, free_port()))
        pgb = up(PgBouncer(work, pg, free_port(), query_wait_timeout=3))
        pg_link = up(Link(pg.port))
        far = up(PgBouncer(work / "linked", BehindLink(pg, pg_link), free_port(), query_wait_timeout=3))
        links = {
            "postgres": pg_link,
            "pgbouncer": up(Link(far.port)),
            "redis": up(Link(redis_server.port)),
            "s3": up(Link(s3_server.port)),
        }
        yield {"postgres": pg, "pgbouncer": pgb, "linked_pgbouncer": far, "links": links}
    finally:
        for thing in reversed(started):
            thing.stop()


@pytest.fixture(scope="module")
def settings(settings, durable):
    """The package's settings (credentials, model name) over this module's durable database;
    a frozen S3 is given up after 2 s of silence per attempt."""
    return settings.model_copy(
        update={
            "database_url": SecretStr(durable["pgbouncer"].dsn),
            "database_direct_url": SecretStr(durable["postgres"].dsn),
            "s3_read_timeout_s": 2.0,
        }
    )


@pytest.fixture(scope="module")
def linked_settings(settings, durable, redis_server, s3_server):
    """The same services, every one reached over its link."""
    links, far = durable["links"], durable["linked_pgbouncer"]
    return settings.model_copy(
        update={
            "database_url": SecretStr(url_via(far.dsn, far.port, links["pgbouncer"])),
            "redis_url": url_via(settings.redis_url, redis_server.port, links["redis"]),
            "s3_endpoint_url": url_via(settings.s3_endpoint_url, s3_server.port, links["s3"]),
        }
    )


@pytest.fixture(scope="module")
async def functions(settings, linked_settings, pool, corpus, start_function):
    mojo, rows = corpus["binomial"]
    await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    fns = {
        "predict": start_function("predict", settings),
        "ingest": start_function("ingest", settings),
        "reload": start_function("reload", settings),
        "linked_predict": start_function("predict", linked_settings),
        "linked_ingest": start_function("ingest", linked_settings),
    }
    await wait_ready(fns["predict"].url)
    await wait_ready(fns["linked_predict"].url)
    fns["links"] = {
        role: Link(fns[role].port, port=free_port()).start() for role in ("predict", "ingest")
    }
    yield fns
    for link in fns["links"].values():
        link.stop()


@pytest.fixture(autouse=True)
def _thaw_and_restart(durable, redis_server, s3_server):
    """A failed scenario must not leave a service frozen, dead or behind a bad link."""
    yield
    for service in (redis_server, s3_server, durable["postgres"], durable["pgbouncer"]):
        if service.pid is not None:
            signal_tree(process_tree(service.pid), signal.SIGCONT)
        if not service.is_running():
            service.start()
    for link in durable["links"].values():
        link.clear()


def _fault(target, kind, functions, durable, request):
    """(fail, recover) for one target and kind, and the predict and ingest URLs to load."""
    links = {**durable["links"], "functions": list(functions["links"].values())}
    if kind == "netem" and target == "functions":
        urls = [f"http://{link.host}:{link.port}" for link in links["functions"]]
    elif kind == "netem":
        urls = [functions["linked_predict"].url, functions["linked_ingest"].url]
    else:
        urls = [functions["predict"].url, functions["ingest"].url]
    predict = functions["predict"]

    def start_predict() -> None:
        predict.start()
        asyncio.run(wait_ready(predict.url))

    services = {
        "redis": request.getfixturevalue("redis_server"),
        "s3": request.getfixturevalue("s3_server"),
        "postgres": durable["postgres"],
        "pgbouncer": durable["pgbouncer"],
    }
    fault = scenario(
        target, kind, services=services, functions=functions, links=links,
        start_predict=start_predict,
    )  # fmt: skip
    return fault, urls


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", TARGETS)
async def test_fault_under_load_loses_no_prediction_and_no_event(
    request, target, kind, functions, durable, corpus
):
    (fail, recover), (predict_url, ingest_url) = _fault(target, kind, functions, durable, request)
    _, rows = corpus["binomial"]
    bodies = predict_bodies(rows, "PSA", 4000)
    async with (
        httpx.AsyncClient(base_url=predict_url, timeout=10.0, limits=CLIENT_LIMITS) as predict,
        httpx.AsyncClient(base_url=ingest_url, timeout=10.0, limits=CLIENT_LIMITS) as ingest,
    ):
        stream = EventStream(ingest, INGEST_TOKEN)
        result = await fault_run(
            f"{target} {kind}", fail, recover,
            predict=httpx_predict(predict, bodies), ingest=stream,
            direct_dsn=durable["postgres"].dsn, down_s=3.0,
        )  # fmt: skip
    print(result.row())

    assert result.settled, f"streams never ran clean again after the recovery: {result.row()}"
    assert result.acked_missing == 0, "ingest acknowledged vectors it had not stored"
    assert result.lost == 0 and result.doubled == 0, "not exactly once after redelivery"
    assert result.predict_sent > 100 and result.ingest_sent > 20
    statuses = set(result.failure_statuses)
    dead = kind in ("stop", "kill")
    if dead:
        # A dead dependency fails fast and does not open a breaker, so the first request after it
        # is back succeeds (a hung one opens it: until its next trial, requests still get a 503;
        # the benchmark reports how many).
        assert result.failed_after_recovery == 0, result.row()
    if target == "functions" and dead:
        # The only replicas were down: the streams must notice, as refused connections.
        assert result.predict_failed > 0 and result.ingest_failed > 0
        assert statuses == {0}, result.failure_statuses
    else:
        # Explicit features need no cache, database or store, and a frozen or slow function
        # answers late, not wrongly: not one failed prediction.
        assert result.predict_failed == 0, result.failure_statuses
    if target in ("redis", "s3") or (target == "functions" and not dead):
        assert result.ingest_failed == 0, result.failure_statuses
    if target in ("postgres", "pgbouncer"):
        # A dead or hung database is a retryable 503 (Knative redelivers), never a 500, never a
        # request left hanging until the client gives up (the client waits 10 s, the database is
        # frozen for 3 s: a request that waited it out would have succeeded, not failed).
        assert statuses <= {503}, result.failure_statuses
        if kind != "netem":
            assert result.ingest_failed > 0
    for fn in functions.values():
        if hasattr(fn, "log_path"):
            assert log_problems(fn) == []


@pytest.mark.parametrize("outage", ["stop", "freeze"])
async def test_reload_during_s3_outage_is_retryable_and_keeps_serving(
    outage, functions, settings, pool, corpus, s3_server
):
    """A reload while the store is down (stopped, or frozen with SIGSTOP: it accepts connections
    and never answers) answers 503 and changes nothing; retried later, it works. The frozen store
    is given up after the reader's timeouts (``s3_read_timeout_s``, 2 s here), well within the
    client's 30 s."""
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    registry = Registry(pool)
    before = (await registry.production(name)).version
    mv = await register_model(settings, pool, name, mojo, rows)
    async with (
        httpx.AsyncClient(base_url=functions["predict"].url, timeout=10.0) as predict_client,
        httpx.AsyncClient(
            base_url=functions["reload"].url, timeout=30.0,
            headers={"authorization": f"Bearer {TOKEN}"},
        ) as reload_client,
    ):  # fmt: skip
        frozen = process_tree(s3_server.pid)
        s3_server.stop() if outage == "stop" else signal_tree(frozen, signal.SIGSTOP)
        try:
            r = await reload_client.post(
                "/admin/reload-model", json={"name": name, "version": mv.version}
            )
            assert r.status_code == 503, r.text
            assert (await registry.production(name)).version == before
            p = await predict_client.post("/predict", json={"features": rows[0]})
            assert p.status_code == 200 and p.json()["version"] == before
        finally:
            s3_server.start() if outage == "stop" else signal_tree(frozen, signal.SIGCONT)
        r = await reload_client.post(
            "/admin/reload-model", json={"name": name, "version": mv.version}
        )
        assert r.status_code == 200, r.text
    assert (await registry.production(name)).version == mv.version


async def test_unknown_model_while_the_database_is_down_is_a_503(functions, durable, corpus):
    """A model this replica does not serve yet needs the registry; without it, retry later (503),
    while the model it does serve keeps answering."""
    rows = corpus["binomial"][1]
    pgbouncer = durable["pgbouncer"]
    async with httpx.AsyncClient(base_url=functions["predict"].url, timeout=10.0) as client:
        pgbouncer.stop()
        try:
            r = await client.post("/predict", json={"model": "not-loaded-here", "features": rows[0]})
            assert r.status_code == 503, r.text
            r = await client.post("/predict", json={"features": rows[0]})
            assert r.status_code == 200, r.text
        finally:
            pgbouncer.start()
        r = await client.post("/predict", json={"model": "not-loaded-here", "features": rows[0]})
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


async def test_a_write_on_a_pooled_connection_dropped_while_idle_is_retried_once(settings, durable):
    """PgBouncer dies and comes back while the pool's connections sit idle, and the pool has not
    noticed yet (its event loop was busy): the next write meets a dead connection. Ingest writes
    are idempotent, so the store writes once more on a fresh connection instead of failing."""
    await migrate(settings)
    pool = await create_pool(settings, min_size=2, max_size=2)
    store = FeatureStore(pool, write_timeout_s=10.0)
    prefix = f"stale-{uuid.uuid4().hex[:8]}"

    def vector(i: int) -> FeatureVector:
        return FeatureVector(
            entity_id=f"{prefix}-{i}", event_time="2025-01-01T00:00:00Z", features={"i": i}
        )

    try:
        assert await store.upsert([vector(0)]) == 1
        pgbouncer = durable["pgbouncer"]
        os.kill(pgbouncer.pid, signal.SIGKILL)  # blocking on purpose: the loop sees nothing
        pgbouncer.stop()
        pgbouncer.start()
        assert await store.upsert([vector(1)]) == 1
        assert sorted(await store.latest_many([f"{prefix}-0", f"{prefix}-1"])) == [
            f"{prefix}-0", f"{prefix}-1",
        ]  # fmt: skip
    finally:
        await pool.close()


async def test_predict_by_entity_with_the_database_frozen_is_a_503_not_a_hang(
    functions, settings, durable, corpus
):
    """An entity's features are only in the database (not yet in the online copy) and the
    database hangs (PgBouncer stopped with SIGSTOP, for longer than the client waits): predict
    answers a retryable 503 naming the feature store instead of holding the request until the
    database comes back; once it is back, the same request is served."""
    _, rows = corpus["binomial"]
    await migrate(settings)
    pool = await create_pool(settings, min_size=1, max_size=1)
    entity = f"frozen-{uuid.uuid4().hex[:8]}"
    try:
        await FeatureStore(pool).upsert(
            [FeatureVector(entity_id=entity, event_time="2025-01-01T00:00:00Z", features=rows[0])])
    finally:
        await pool.close()
    frozen = process_tree(durable["pgbouncer"].pid)
    async with httpx.AsyncClient(base_url=functions["predict"].url, timeout=10.0) as client:
        signal_tree(frozen, signal.SIGSTOP)
        try:
            hung = await client.post("/predict", json={"entity_id": entity})
        finally:
            signal_tree(frozen, signal.SIGCONT)
        assert hung.status_code == 503, hung.text
        assert "feature store" in hung.json()["error"]
        for _ in range(50):  # a breaker opened by the hang lets a trial through shortly
            served = await client.post("/predict", json={"entity_id": entity})
            if served.status_code != 503:
                break
            await asyncio.sleep(0.2)
        assert served.status_code == 200, served.text
