"""Model registry on real Postgres through PgBouncer: versions, one production, rollback."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from converge import migrations
from converge.db import create_pool
from converge.errors import InvalidInput, ModelNotFound, NoRollbackTarget, StaleVersion
from converge.registry import Registry
from converge.settings import Settings

pytestmark = pytest.mark.integration

SHA = "ab" * 32
SAMPLE = {
    "rows": [{"amount": 12.5, "country": "DE"}, {"amount": 900.0, "country": "FR"}],
    "predictions": [{"predict": "0", "0": 0.9, "1": 0.1}, {"predict": "1", "0": 0.2, "1": 0.8}],
}


@pytest.fixture(scope="module")
async def pool(pgbouncer):
    settings = Settings(database_url=pgbouncer.dsn, db_pool_min=0, db_pool_max=10)
    migrations.upgrade(settings)
    p = await create_pool(settings)
    yield p
    await p.close()


@pytest.fixture
def registry(pool: asyncpg.Pool) -> Registry:
    return Registry(pool)


@pytest.fixture
def n() -> dict[str, str]:
    """Model names unique to this test, so tests share the database without clearing it."""
    suffix = uuid.uuid4().hex[:8]
    return {k: f"{k}-{suffix}" for k in ("churn", "fraud", "race", "ok", "ghost")}


async def register(registry: Registry, name: str = "churn", n: int = 1) -> list[int]:
    out = []
    for i in range(n):
        mv = await registry.register(
            name,
            artifact_uri=f"s3://converge-models/models/{name}/{i + 1}/model.zip",
            sha256=SHA,
            metrics={"auc": 0.8 + i / 100},
            lineage={"cut_off": "2024-03-01T00:00:00Z", "h2o_version": "3.46.0.11", "i": i},
            validation_sample=SAMPLE,
        )
        out.append(mv.version)
    return out


async def production_rows(pool: asyncpg.Pool, name: str) -> list[int]:
    rows = await pool.fetch(
        "SELECT version FROM model_versions WHERE name = $1 AND stage = 'production'", name
    )
    return [r["version"] for r in rows]


async def test_register_numbers_versions_per_model(registry: Registry, n: dict[str, str]) -> None:
    assert await register(registry, n["churn"], 3) == [1, 2, 3]
    assert await register(registry, n["fraud"], 1) == [1]
    mv = await registry.get(n["churn"], 2)
    assert mv.stage == "staging" and mv.sha256 == SHA
    assert mv.validation_sample == SAMPLE and mv.metrics == {"auc": 0.81}
    assert await registry.lineage(n["churn"], 2) == {
        "cut_off": "2024-03-01T00:00:00Z",
        "h2o_version": "3.46.0.11",
        "i": 1,
    }
    assert [v.version for v in await registry.list_versions(n["churn"])] == [3, 2, 1]
    assert await registry.list_versions("nope") == []
    models = {m["name"]: m for m in await registry.list_models()}
    assert models[n["churn"]]["versions"] == 3 and models[n["churn"]]["production_version"] is None


async def test_concurrent_registrations_get_distinct_versions(
    registry: Registry, n: dict[str, str]
) -> None:
    results = await asyncio.gather(*(register(registry, n["race"]) for _ in range(8)))
    assert sorted(v for (v,) in results) == list(range(1, 9))


async def test_bad_registrations_are_refused_naming_the_field(
    registry: Registry, n: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput, match="name"):
        await registry.register("../x", artifact_uri="s3://b/k", sha256=SHA)
    with pytest.raises(InvalidInput, match="sha256"):
        await registry.register(n["ok"], artifact_uri="s3://b/k", sha256="xyz")
    with pytest.raises(InvalidInput, match="validation_sample"):
        await registry.register(
            n["ok"],
            artifact_uri="s3://b/k",
            sha256=SHA,
            validation_sample={"rows": [{}], "predictions": []},
        )
    with pytest.raises(ModelNotFound):
        await registry.get(n["ok"], 1)


async def test_promote_archives_the_previous_production(
    registry: Registry, n: dict[str, str], pool
) -> None:
    await register(registry, n["churn"], 3)
    assert await registry.production(n["churn"]) is None
    assert (await registry.promote(n["churn"], 1)).stage == "production"
    promoted = await registry.promote(n["churn"], 2)
    assert promoted.stage == "production" and promoted.promoted_at is not None
    assert (await registry.get(n["churn"], 1)).stage == "archived"
    assert (await registry.get(n["churn"], 3)).stage == "staging"
    assert (await registry.production(n["churn"])).version == 2
    assert (await registry.promote(n["churn"], 2)).version == 2  # no-op
    assert await production_rows(pool, n["churn"]) == [2]
    with pytest.raises(ModelNotFound):
        await registry.promote(n["churn"], 99)
    with pytest.raises(ModelNotFound):
        await registry.promote(n["ghost"], 1)


async def test_concurrent_promotes_leave_exactly_one_production_and_never_go_back(
    registry: Registry, n: dict[str, str], pool
) -> None:
    await register(registry, n["churn"], 9)
    highest = 0
    for round_ in range(5):
        wanted = (1 + round_ % 6, 6 - round_ % 6, 3 + round_)
        results = await asyncio.gather(
            *(registry.promote(n["churn"], v) for v in wanted), return_exceptions=True
        )
        assert all(isinstance(r, StaleVersion) for r in results if isinstance(r, BaseException))
        (prod,) = await production_rows(pool, n["churn"])
        assert prod == max(highest, *wanted), (round_, wanted, results)
        highest = prod


async def test_an_event_never_brings_back_a_version_that_was_production(
    registry: Registry, n: dict[str, str], pool
) -> None:
    name = n["churn"]
    await register(registry, name, 3)
    await registry.promote(name, 2, event=True)
    for late in (1, 2):  # older, or a redelivery of the current one (a no-op)
        if late == 1:
            with pytest.raises(StaleVersion) as stale:
                await registry.promote(name, late, event=True)
            assert stale.value.production == 2
        else:
            await registry.promote(name, late, event=True)
    await registry.promote(name, 3, event=True)
    assert (await registry.rollback(name)).version == 2
    with pytest.raises(StaleVersion):  # the rolled-back v3's late event does not undo the rollback
        await registry.promote(name, 3, event=True)
    assert await production_rows(pool, name) == [2]
    await registry.promote(name, 3)  # an explicit promotion may go forward again
    assert await production_rows(pool, name) == [3]


async def test_the_database_refuses_a_second_production(
    registry: Registry, n: dict[str, str], pool
) -> None:
    """The rule holds even for code that bypasses Registry: it is a unique index."""
    name = n["churn"]
    await register(registry, name, 2)
    await registry.promote(name, 1)
    set_stage = "UPDATE model_versions SET stage = $2 WHERE name = $1 AND version = $3"
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(set_stage, name, "production", 2)
    # Two transactions racing without the registry's lock: the later one is refused.
    await pool.execute("UPDATE model_versions SET stage = 'staging' WHERE name = $1", name)
    async with pool.acquire() as a, pool.acquire() as b:
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        await a.execute(set_stage, name, "production", 1)
        # Before or after the first commit, the unique index refuses the second production row.
        second = asyncio.create_task(b.execute(set_stage, name, "production", 2))
        await asyncio.sleep(0)
        await ta.commit()
        with pytest.raises(asyncpg.UniqueViolationError):
            await second
        await tb.rollback()
    assert await production_rows(pool, name) == [1]
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(set_stage, name, "shadow", 2)


async def test_rollback_walks_back_through_production_history(
    registry: Registry, n: dict[str, str], pool
) -> None:
    await register(registry, n["churn"], 4)
    with pytest.raises(NoRollbackTarget):
        await registry.rollback(n["churn"])  # nothing in production yet
    for v in (1, 2, 3):
        await registry.promote(n["churn"], v)
    assert (await registry.rollback(n["churn"])).version == 2
    assert (await registry.get(n["churn"], 3)).stage == "archived"
    assert (await registry.rollback(n["churn"])).version == 1
    with pytest.raises(NoRollbackTarget):
        await registry.rollback(n["churn"])
    assert await production_rows(pool, n["churn"]) == [1]  # a refused rollback changes nothing
    assert (await registry.get(n["churn"], 4)).stage == "staging"  # never production: never a target
    # A fresh promotion after rollbacks starts a new history.
    await registry.promote(n["churn"], 4)
    assert (await registry.rollback(n["churn"])).version == 1
