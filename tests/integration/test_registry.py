"""Model registry on real Postgres through PgBouncer: versions, one production, rollback."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from converge import migrations
from converge.db import create_pool
from converge.errors import InvalidInput, ModelNotFound, NoRollbackTarget
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
async def registry(pool: asyncpg.Pool) -> Registry:
    await pool.execute("TRUNCATE model_versions, models")
    return Registry(pool)


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


async def test_register_numbers_versions_per_model(registry: Registry) -> None:
    assert await register(registry, "churn", 3) == [1, 2, 3]
    assert await register(registry, "fraud", 1) == [1]
    mv = await registry.get("churn", 2)
    assert mv.stage == "staging" and mv.sha256 == SHA
    assert mv.validation_sample == SAMPLE and mv.metrics == {"auc": 0.81}
    assert await registry.lineage("churn", 2) == {
        "cut_off": "2024-03-01T00:00:00Z",
        "h2o_version": "3.46.0.11",
        "i": 1,
    }
    assert [v.version for v in await registry.list_versions("churn")] == [3, 2, 1]
    assert await registry.list_versions("nope") == []
    models = {m["name"]: m for m in await registry.list_models()}
    assert models["churn"]["versions"] == 3 and models["churn"]["production_version"] is None


async def test_concurrent_registrations_get_distinct_versions(registry: Registry) -> None:
    results = await asyncio.gather(*(register(registry, "race") for _ in range(8)))
    assert sorted(v for (v,) in results) == list(range(1, 9))


async def test_bad_registrations_are_refused_naming_the_field(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="name"):
        await registry.register("../x", artifact_uri="s3://b/k", sha256=SHA)
    with pytest.raises(InvalidInput, match="sha256"):
        await registry.register("ok", artifact_uri="s3://b/k", sha256="xyz")
    with pytest.raises(InvalidInput, match="validation_sample"):
        await registry.register(
            "ok",
            artifact_uri="s3://b/k",
            sha256=SHA,
            validation_sample={"rows": [{}], "predictions": []},
        )
    with pytest.raises(ModelNotFound):
        await registry.get("ok", 1)


async def test_promote_archives_the_previous_production(registry: Registry, pool) -> None:
    await register(registry, "churn", 3)
    assert await registry.production("churn") is None
    assert (await registry.promote("churn", 1)).stage == "production"
    promoted = await registry.promote("churn", 2)
    assert promoted.stage == "production" and promoted.promoted_at is not None
    assert (await registry.get("churn", 1)).stage == "archived"
    assert (await registry.get("churn", 3)).stage == "staging"
    assert (await registry.production("churn")).version == 2
    assert (await registry.promote("churn", 2)).version == 2  # no-op
    assert await production_rows(pool, "churn") == [2]
    with pytest.raises(ModelNotFound):
        await registry.promote("churn", 99)
    with pytest.raises(ModelNotFound):
        await registry.promote("ghost", 1)


async def test_concurrent_promotes_leave_exactly_one_production(registry: Registry, pool) -> None:
    await register(registry, "churn", 6)
    for round_ in range(5):
        results = await asyncio.gather(
            *(registry.promote("churn", v) for v in (1 + round_ % 6, 6 - round_ % 6, 3)),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, BaseException)]
        (prod,) = await production_rows(pool, "churn")
        assert prod in {r.version for r in results}


async def test_the_database_refuses_a_second_production(registry: Registry, pool) -> None:
    """The rule holds even for code that bypasses Registry: it is a unique index."""
    await register(registry, "churn", 2)
    await registry.promote("churn", 1)
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(
            "UPDATE model_versions SET stage = 'production' WHERE name = 'churn' AND version = 2"
        )
    # Two transactions racing without the registry's lock: the second one fails on commit order.
    await pool.execute("UPDATE model_versions SET stage = 'staging' WHERE name = 'churn'")
    async with pool.acquire() as a, pool.acquire() as b:
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        promote = "UPDATE model_versions SET stage = 'production' WHERE name = 'churn' AND version = $1"
        await a.execute(promote, 1)
        # Before or after the first commit, the unique index refuses the second production row.
        second = asyncio.create_task(b.execute(promote, 2))
        await asyncio.sleep(0)
        await ta.commit()
        with pytest.raises(asyncpg.UniqueViolationError):
            await second
        await tb.rollback()
    assert await production_rows(pool, "churn") == [1]
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("UPDATE model_versions SET stage = 'shadow' WHERE name = 'churn'")


async def test_rollback_walks_back_through_production_history(registry: Registry, pool) -> None:
    await register(registry, "churn", 4)
    with pytest.raises(NoRollbackTarget):
        await registry.rollback("churn")  # nothing in production yet
    for v in (1, 2, 3):
        await registry.promote("churn", v)
    assert (await registry.rollback("churn")).version == 2
    assert (await registry.get("churn", 3)).stage == "archived"
    assert (await registry.rollback("churn")).version == 1
    with pytest.raises(NoRollbackTarget):
        await registry.rollback("churn")
    assert await production_rows(pool, "churn") == [1]  # a refused rollback changes nothing
    assert (await registry.get("churn", 4)).stage == "staging"  # never production: never a target
    # A fresh promotion after rollbacks starts a new history.
    await registry.promote("churn", 4)
    assert (await registry.rollback("churn")).version == 1
