"""The ingest function: HTTP and CloudEvents, validation, idempotent redelivery, DB outages.

A database fault must answer 503 (Knative redelivers) and a redelivery must write nothing twice.
"""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from converge.checkout import REPO
from converge.db import create_pool
from converge.event_signing import signed_envelope, signed_headers
from converge.serving.online import online_key
from converge.serving.testing import FunctionProcess, migrate, wait_until
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
async def pool(stack_settings):
    await migrate(stack_settings)
    pool = await create_pool(stack_settings, min_size=0)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def server(stack_settings, pool, tmp_path_factory):
    log = tmp_path_factory.mktemp("ingest") / "ingest.log"
    proc = FunctionProcess(
        "ingest", REPO / "functions" / "main.py", stack_settings, free_port(), log,
        wrapper="functions-framework",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def client(server, stack_settings):
    token = stack_settings.ingest_token.get_secret_value()
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0, headers=headers) as client:
        yield client


def vectors(n: int, prefix: str | None = None) -> list[dict]:
    prefix = prefix or f"e-{uuid.uuid4().hex[:8]}"
    return [
        {
            "entity_id": f"{prefix}-{i}",
            "event_time": f"2024-03-01T00:00:{i % 60:02d}Z",
            "features": {"AGE": 50.0 + i, "RACE": "1", "PSA": 1.5 * i, "flag": i % 2 == 0},
        }
        for i in range(n)
    ]


async def rows_for(pool, prefix: str) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM features WHERE entity_id LIKE $1", prefix + "-%"
    )


async def test_one_vector_a_batch_and_a_redelivery(client, pool):
    [one] = vectors(1)
    r = await client.post("/ingest", json=one)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1, "written": 1, "duplicate": False}

    batch = vectors(25, prefix="batch-" + uuid.uuid4().hex[:6])
    r = await client.post("/", json={"vectors": batch})
    assert r.json() == {"received": 25, "written": 25, "duplicate": False}
    redelivered = await client.post("/", json={"vectors": batch})
    assert redelivered.json() == {"received": 25, "written": 0, "duplicate": False}
    assert await rows_for(pool, batch[0]["entity_id"].rsplit("-", 1)[0]) == 25


async def test_cloudevents_binary_and_structured(client, stack_settings):
    key = stack_settings.ingest_token.get_secret_value()
    prefix = "ce-" + uuid.uuid4().hex[:6]
    batch = vectors(3, prefix)
    data = {"vectors": batch}
    binary = await client.post(
        "/events",
        content=orjson.dumps(data),
        headers=signed_headers(key, "features.ingest", "tests", data, f"{prefix}-b1"),
    )
    assert binary.status_code == 200, binary.text
    assert binary.json()["written"] == 3
    envelope = signed_envelope(key, "features.ingest", "tests", batch[0], f"{prefix}-s1")
    structured = await client.post(
        "/events",
        content=orjson.dumps(envelope),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert structured.status_code == 200, structured.text
    assert structured.json() == {"received": 1, "written": 0, "duplicate": False}


async def test_online_copy_is_refreshed(client, redis_server, stack_settings):
    import redis.asyncio as aioredis

    prefix = "online-" + uuid.uuid4().hex[:6]
    [older] = vectors(1, prefix)
    newer = dict(older, event_time="2024-03-02T00:00:00Z", features={"AGE": 99.0})
    assert (await client.post("/ingest", json=newer)).status_code == 200
    assert (await client.post("/ingest", json=older)).status_code == 200  # late arrival
    r = aioredis.from_url(stack_settings.redis_url)
    try:
        stored = await r.hget(online_key(older["entity_id"]), "f")
    finally:
        await r.aclose()
    assert orjson.loads(stored) == {"AGE": 99.0}


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        (b"{oops", 400, None),
        (b'{"vectors": []}', 422, ["vectors"]),
        (
            b'{"entity_id": "a", "event_time": "2024-01-01T00:00:00", "features": {}}',
            422,
            ["event_time"],
        ),
        (
            b'{"entity_id": "a", "event_time": "2024-01-01T00:00:00Z", "features": {"x": [1]}}',
            422,
            ["features", "x"],
        ),
        (
            b'{"vectors": [{"entity_id": "", "event_time": "2024-01-01T00:00:00Z", "features": {}}]}',
            422,
            ["vectors", 0, "entity_id"],
        ),
        (
            b'{"entity_id": "a", "event_time": "2024-01-01T00:00:00Z", "features": {}, "x": 1}',
            422,
            ["x"],
        ),
    ],
)
async def test_invalid_input_names_the_field(client, body, status, loc):
    r = await client.post("/ingest", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text
    if loc:
        assert r.json()["detail"][0]["loc"][: len(loc)] == loc
        assert str(loc[0]) in r.json()["error"]


async def test_wrong_event_type_is_a_400(client):
    r = await client.post(
        "/events",
        json=vectors(1)[0],
        headers={
            "ce-specversion": "1.0",
            "ce-type": "model.published",
            "ce-source": "t",
            "ce-id": "1",
        },
    )
    assert r.status_code == 400
    assert "model.published" in r.json()["error"]


async def test_database_down_is_a_503_and_redelivery_writes_exactly_once(client, pool, pgbouncer):
    prefix = "outage-" + uuid.uuid4().hex[:6]
    batch = {"vectors": vectors(10, prefix)}
    pgbouncer.stop()
    try:
        down = await client.post("/ingest", json=batch)
        assert down.status_code == 503, down.text
        assert "redeliver" in down.json()["error"]
    finally:
        pgbouncer.start()

    async def redelivered():
        r = await client.post("/ingest", json=batch)
        assert r.status_code in (200, 503), r.text
        return r.status_code == 200 and r.json()

    first = await wait_until(redelivered, timeout=30, interval=0.5)
    assert first == {"received": 10, "written": 10, "duplicate": False}
    again = await client.post("/ingest", json=batch)
    assert again.json() == {"received": 10, "written": 0, "duplicate": False}
    assert await rows_for(pool, prefix) == 10
