"""Resource behaviour: memory across many reloads, and database connections under load.

Why: a long-lived predict replica swaps models for weeks; if each swap leaked the old model, it
would die of memory. And the point of PgBouncer is that the number of Postgres connections stays
at its pool size however many function instances (and their own pools) connect to it.
H2O frames after training are checked by
``tests/integration/test_training.py::test_split_jobs_leave_no_frames_on_the_cluster``.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import psutil
import pytest
from reliability_support import INGEST_AUTH, TOKEN, wait_ready

from converge.serving.testing import FunctionProcess, register_model, wait_until

pytestmark = pytest.mark.integration

RELOADS = 24
WARM_UP = 4


def group_rss(fn: FunctionProcess) -> int:
    """Resident memory of a function: its process and every child (the server's worker)."""
    root = psutil.Process(fn.proc.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def group_pids(fn: FunctionProcess) -> set[int]:
    root = psutil.Process(fn.proc.pid)
    return {p.pid for p in [root, *root.children(recursive=True)]}


@pytest.mark.slow
async def test_memory_of_predict_and_reload_stays_flat_across_many_reloads(
    settings, pool, corpus, start_function
):
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    await register_model(settings, pool, name, mojo, rows, promote=True)
    predict = start_function("predict", settings.model_copy(update={"registry_poll_s": 30.0}))
    reload_fn = start_function("reload", settings)
    await wait_ready(predict.url)
    features = {**corpus["regression"][1][0], **corpus["binomial"][1][0]}
    rss: dict[str, list[int]] = {"predict": [], "reload": []}

    async with (
        httpx.AsyncClient(base_url=predict.url, timeout=30.0) as client,
        httpx.AsyncClient(
            base_url=reload_fn.url, timeout=60.0, headers={"authorization": f"Bearer {TOKEN}"}
        ) as admin,
    ):
        for i in range(WARM_UP + RELOADS):
            kind = ("regression", "binomial")[i % 2]
            mojo, rows = corpus[kind]
            mv = await register_model(settings, pool, name, mojo, rows)
            r = await admin.post("/admin/reload-model", json={"name": name, "version": mv.version})
            assert r.status_code == 200, r.text

            async def served(version=mv.version) -> bool:
                r = await client.post("/predict", json={"features": features})
                return r.status_code == 200 and r.json()["version"] == version

            await wait_until(served, timeout=30, interval=0.05)
            # Some traffic on each version, so caches and scoring buffers are exercised too.
            bodies = [{"features": {**features, "PSA": float(j)}} for j in range(50)]
            answers = await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))
            assert all(a.status_code == 200 for a in answers)
            for role, fn in (("predict", predict), ("reload", reload_fn)):
                rss[role].append(group_rss(fn))

    print({role: [round(v / 2**20) for v in values] for role, values in rss.items()})
    for role, values in rss.items():
        warm, final = values[WARM_UP - 1], values[-1]
        assert final < warm * 1.5, f"{role}: RSS grew from {warm >> 20} MiB to {final >> 20} MiB"


async def test_postgres_connections_stay_within_the_pgbouncer_pool_under_load(
    settings, pgbouncer, postgres, start_function
):
    """Two ingest instances whose own pools together exceed PgBouncer's pool, driven hard."""
    wide = settings.model_copy(update={"db_pool_max": 16})
    fns = [start_function("ingest", wide) for _ in range(2)]
    pgb = psutil.Process(pgbouncer.pid)
    samples: list[tuple[int, int]] = []  # (PgBouncer -> Postgres, ingest -> PgBouncer)
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            servers = sum(
                1 for c in pgb.connections(kind="tcp")
                if c.raddr and c.raddr.port == postgres.port and c.status == psutil.CONN_ESTABLISHED
            )  # fmt: skip
            clients = 0
            for fn in fns:
                for pid in group_pids(fn):
                    clients += sum(
                        1 for c in psutil.Process(pid).connections(kind="tcp")
                        if c.raddr and c.raddr.port == pgbouncer.port
                    )  # fmt: skip
            samples.append((servers, clients))
            await asyncio.sleep(0.05)

    prefix = f"pool-{uuid.uuid4().hex[:8]}"
    statuses: dict[int, int] = {}

    async def client(k: int, url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            deadline = time.monotonic() + 6.0
            n = 0
            while time.monotonic() < deadline and n < 200:
                vectors = [
                    {"entity_id": f"{prefix}-{k}-{n}-{j}", "event_time": "2025-04-01T00:00:00Z",
                     "features": {"j": j, "k": k}}
                    for j in range(100)
                ]  # fmt: skip
                r = await http.post("/ingest", content=orjson.dumps({"vectors": vectors}),
                                    headers={"content-type": "application/json", **INGEST_AUTH})  # fmt: skip
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                n += 1

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await asyncio.gather(*(client(k, fns[k % 2].url) for k in range(48)))
    finally:
        stop.set()
        await watcher
    servers = max(s for s, _ in samples)
    clients = max(c for _, c in samples)
    print({"max_server_connections": servers, "max_client_connections": clients,
           "pool_size": pgbouncer.pool_size, "statuses": statuses})  # fmt: skip
    assert clients > pgbouncer.pool_size, "the load never needed more connections than the pool"
    assert servers <= pgbouncer.pool_size
    assert set(statuses) == {200}, statuses
