"""Feature store against real Postgres behind real PgBouncer (transaction pooling).

The fault tests stop Postgres or PgBouncer while a batch is inside its transaction, then retry the
same batch the way Knative redelivery would, and check that every row exists exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import asyncpg
import psycopg
import pytest

from converge import migrations
from converge.contracts import FeatureVector
from converge.db import create_pool
from converge.errors import DatabaseUnavailable
from converge.features import FeatureStore
from converge.settings import Settings

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 1, tzinfo=UTC)
R = TypeVar("R")


@pytest.fixture(scope="module")
def settings(pgbouncer) -> Settings:
    s = Settings(database_url=pgbouncer.dsn, db_pool_min=0, db_pool_max=10)
    migrations.upgrade(s)
    return s


@pytest.fixture(scope="module")
async def pool(settings: Settings):
    p = await create_pool(settings)
    yield p
    await p.close()


@pytest.fixture
async def store(pool: asyncpg.Pool) -> FeatureStore:
    await pool.execute("TRUNCATE features")
    return FeatureStore(pool)


def vectors(n: int, *, prefix: str = "e", entities: int = 10, salt: int = 0) -> list[FeatureVector]:
    """n vectors over `entities` entities, one event per hour; `salt` changes the values."""
    return [
        FeatureVector(
            entity_id=f"{prefix}{i % entities}",
            event_time=T0 + timedelta(hours=i),
            features={"x": i + salt, "y": float(i) / 3, "cat": f"c{i % 4}", "flag": i % 2 == 0},
        )
        for i in range(n)
    ]


def expected(*batches: list[FeatureVector]) -> dict[tuple[str, datetime], dict]:
    out: dict[tuple[str, datetime], dict] = {}
    for batch in batches:
        for v in batch:
            out[(v.entity_id, v.event_time)] = v.features
    return out


def table_contents(dsn: str) -> dict[tuple[str, datetime], dict]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT entity_id, event_time, feature_vector FROM features").fetchall()
    out = {(e, t): f for e, t, f in rows}
    assert len(out) == len(rows)  # no key twice
    return out


async def retry(call: Callable[[], Awaitable[R]], attempts: int = 60) -> R:
    """What a redelivering broker does: try again after DatabaseUnavailable, a bounded number of times."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except DatabaseUnavailable:
            await asyncio.sleep(0.25)
    return await call()


async def wait_for_lock_wait(dsn: str, needle: str, polls: int = 1200) -> None:
    """Poll until a backend running `needle` waits on a lock (the batch is mid-transaction)."""
    for _ in range(polls):
        with psycopg.connect(dsn, autocommit=True) as conn:
            n = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{needle}%"],
            ).fetchone()[0]
        if n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no backend ever waited on a lock while running {needle!r}")


# -- idempotency --------------------------------------------------------------------------------
async def test_same_batch_twice_writes_nothing_the_second_time(store: FeatureStore) -> None:
    batch = vectors(500)
    assert await store.upsert(batch) == 500
    assert await store.count() == 500
    assert await store.upsert(batch) == 0
    assert await store.count() == 500
    assert await store.upsert([]) == 0


async def test_changed_vector_is_updated_and_counted(store: FeatureStore, postgres) -> None:
    batch = vectors(20)
    await store.upsert(batch)
    before = table_contents(postgres.dsn)
    changed = [batch[3].model_copy(update={"features": {"x": -1}}), batch[4]]
    assert await store.upsert(changed) == 1
    after = table_contents(postgres.dsn)
    assert after[(batch[3].entity_id, batch[3].event_time)] == {"x": -1}
    assert {k: v for k, v in after.items() if k != (batch[3].entity_id, batch[3].event_time)} == {
        k: v for k, v in before.items() if k != (batch[3].entity_id, batch[3].event_time)
    }
    assert await store.count() == 20


async def test_duplicates_inside_one_batch_last_one_wins(store: FeatureStore) -> None:
    first, second = vectors(1)[0], vectors(1, salt=100)[0]
    assert await store.upsert([first, second, first.model_copy(update={"features": {"x": 7}})]) == 1
    got = await store.latest(first.entity_id)
    assert got is not None and got.features == {"x": 7}


async def test_latest_and_latest_many(store: FeatureStore) -> None:
    await store.upsert(vectors(100, entities=10))
    newest = await store.latest("e3")
    assert newest is not None
    assert newest.event_time == T0 + timedelta(hours=93) and newest.features["x"] == 93
    assert await store.latest("nobody") is None
    many = await store.latest_many(["e1", "e9", "nobody", "e1"])
    assert set(many) == {"e1", "e9"}
    assert many["e9"].event_time == T0 + timedelta(hours=99)


# -- point in time ------------------------------------------------------------------------------
async def collect(store: FeatureStore, as_of: datetime, chunk_rows: int = 1000) -> dict:
    out = {}
    async for chunk in store.training_set(as_of, chunk_rows=chunk_rows):
        assert 0 < len(chunk) <= chunk_rows
        for e, t, f in zip(chunk.entity_id, chunk.event_time, chunk.features, strict=True):
            out[(e, t)] = f
    return out


async def test_training_set_sees_only_rows_ingested_by_as_of(store: FeatureStore, pool) -> None:
    early = vectors(50, prefix="a")
    await store.upsert(early)
    as_of = await pool.fetchval("SELECT now()")  # after `early` committed, before `late` starts
    late = vectors(30, prefix="b")
    await store.upsert(late)
    # A correction after the cut-off must not leak into the old cut-off's training set.
    fixed = early[0].model_copy(update={"features": {"x": 12345}})
    assert await store.upsert([fixed]) == 1

    seen = await collect(store, as_of)
    want = expected(early)
    del want[(fixed.entity_id, fixed.event_time)]
    assert seen == want
    everything = await collect(store, datetime.now(UTC) + timedelta(days=1))
    assert everything == expected(early, late, [fixed])


async def test_training_set_is_one_snapshot_while_writes_continue(store: FeatureStore) -> None:
    base = vectors(400, prefix="s", entities=40)
    await store.upsert(base)
    seen: dict = {}
    order = []
    chunks = 0
    async for chunk in store.training_set(datetime.now(UTC) + timedelta(days=1), chunk_rows=100):
        chunks += 1
        order += list(zip(chunk.event_time, chunk.entity_id, strict=True))
        seen.update(
            {(e, t): f for e, t, f in zip(chunk.entity_id, chunk.event_time, chunk.features, strict=True)}
        )
        if chunks == 1:  # mid-stream: new rows, and a change to a row not yet streamed
            assert await store.upsert(vectors(50, prefix="new")) == 50
            assert await store.upsert([base[-1].model_copy(update={"features": {"x": -5}})]) == 1
    assert chunks == 4
    assert seen == expected(base)
    assert order == sorted(order)
    assert await store.count() == 450


async def test_training_chunk_converts_to_a_frame(store: FeatureStore) -> None:
    pd = pytest.importorskip("pandas")
    await store.upsert(vectors(10))
    chunks = [c async for c in store.training_set(datetime.now(UTC), chunk_rows=4)]
    assert [len(c) for c in chunks] == [4, 4, 2]
    frame = pd.concat([c.to_pandas() for c in chunks], ignore_index=True)
    assert list(frame.columns[:3]) == ["entity_id", "event_time", "ingested_at"]
    assert frame["x"].tolist() == list(range(10))
    assert chunks[0].to_vectors()[0] == vectors(1)[0]


async def test_abandoned_training_stream_releases_its_connection(store: FeatureStore, pool) -> None:
    await store.upsert(vectors(30))
    async with contextlib.aclosing(store.training_set(datetime.now(UTC), chunk_rows=5)) as stream:
        async for _ in stream:
            break
    # The pinned connection went back to the pool: every pooled connection can be taken again.
    conns = [await pool.acquire() for _ in range(pool.get_max_size())]
    for c in conns:
        await pool.release(c)


# -- PgBouncer transaction mode ---------------------------------------------------------------
QUERIES: list[tuple[str, Callable[[int], tuple], Callable[[int], object]]] = [
    ("SELECT $1::int + 1 AS v", lambda i: (i,), lambda i: i + 1),
    ("SELECT $1::int::text || '-t' AS v", lambda i: (i,), lambda i: f"{i}-t"),
    ("SELECT jsonb_build_object('i', $1::int, 'l', jsonb_build_array($1::int, 'x')) AS v",
     lambda i: (i,), lambda i: {"i": i, "l": [i, "x"]}),
    ("SELECT $1::timestamptz + interval '1 hour' AS v", lambda i: (T0 + timedelta(minutes=i),),
     lambda i: T0 + timedelta(minutes=i, hours=1)),
    ("SELECT ($1::int * 0.5)::numeric(12, 1) AS v", lambda i: (i,), lambda i: Decimal(i) / 2),
    ("SELECT ARRAY[$1::int, $1::int * 2] AS v", lambda i: (i,), lambda i: [i, 2 * i]),
    ("SELECT $1::int % 2 = 0 AS v", lambda i: (i,), lambda i: i % 2 == 0),
    ("SELECT decode(lpad(to_hex($1::int), 8, '0'), 'hex') AS v", lambda i: (i,),
     lambda i: i.to_bytes(4, "big")),
    ("SELECT $1::float8 / 4 AS v", lambda i: (float(i),), lambda i: i / 4),
]  # fmt: skip


async def test_many_concurrent_statements_through_pgbouncer(settings: Settings) -> None:
    """50 tasks x 100 statements of different shapes: no prepared-statement errors, no row decoded
    with another statement's types (what asyncpg's default statement cache does here)."""
    pool = await create_pool(settings, min_size=50, max_size=50)
    failures: list[str] = []

    async def worker(task: int) -> int:
        checked = 0
        for n in range(100):
            # Text differs per task and step, so statements never repeat verbatim.
            sql, args, want = QUERIES[(task + n) % len(QUERIES)]
            i = task * 1000 + n
            got = await pool.fetchval(f"{sql} /* t{task} n{n} */", *args(i))
            if got != want(i):
                failures.append(f"{sql!r} with {i}: got {got!r}")
            checked += 1
        return checked

    try:
        done = await asyncio.gather(*(worker(t) for t in range(50)))
    finally:
        await pool.close()
    assert failures == []
    assert sum(done) == 5000


# -- faults -------------------------------------------------------------------------------------
async def test_postgres_dies_mid_batch_then_retry_writes_each_row_once(
    settings: Settings, postgres
) -> None:
    pool = await create_pool(settings)
    store = FeatureStore(pool)
    try:
        await pool.execute("TRUNCATE features")
        first = vectors(300, prefix="pg", entities=30)
        assert await store.upsert(first) == 300
        # Overlaps the first batch (150 same, 50 changed) and adds 200 new rows.
        changed = [v.model_copy(update={"features": {"x": -1}}) for v in first[250:]]
        second = first[100:250] + changed + vectors(200, prefix="new-", entities=20)
        blocker = psycopg.connect(postgres.dsn)
        blocker.execute("LOCK TABLE features IN SHARE MODE")  # holds the INSERT before commit
        task = asyncio.create_task(store.upsert(second))
        await wait_for_lock_wait(postgres.dsn, "INSERT INTO features")
        postgres.stop()
        with pytest.raises(DatabaseUnavailable):
            await task
        with contextlib.suppress(psycopg.Error):
            blocker.close()
        postgres.start()

        written = await retry(lambda: store.upsert(second))
        want = expected(first, second)
        assert len(want) == 500
        assert written == 250  # 200 new rows plus the 50 changed ones
        assert await retry(store.count) == len(want)
        assert table_contents(postgres.dsn) == want
        assert await retry(lambda: store.upsert(second)) == 0  # and a further redelivery is a no-op
    finally:
        await pool.close()


async def test_pgbouncer_dies_mid_batch_then_retry_writes_each_row_once(
    settings: Settings, postgres, pgbouncer
) -> None:
    pool = await create_pool(settings)
    store = FeatureStore(pool)
    try:
        await pool.execute("TRUNCATE features")
        batch = vectors(400, prefix="pb", entities=40)
        blocker = psycopg.connect(postgres.dsn)
        blocker.execute("LOCK TABLE features IN SHARE MODE")
        task = asyncio.create_task(store.upsert(batch))
        await wait_for_lock_wait(postgres.dsn, "INSERT INTO features")
        pgbouncer.stop()
        with pytest.raises(DatabaseUnavailable):
            await task
        # The orphaned server backend now runs its INSERT, finds its client gone and rolls back.
        blocker.rollback()
        blocker.close()
        with pytest.raises(DatabaseUnavailable):
            await store.count()
        pgbouncer.start()

        assert await retry(lambda: store.upsert(batch)) == 400
        assert await retry(store.count) == 400
        assert table_contents(postgres.dsn) == expected(batch)
    finally:
        await pool.close()


async def test_unreachable_database_is_a_typed_error(settings: Settings) -> None:
    dead = settings.model_copy(
        update={"database_url": settings.database_url.__class__("postgresql://u:p@127.0.0.1:9/x")}
    )
    with pytest.raises(DatabaseUnavailable):
        await create_pool(dead, min_size=1)


async def test_concurrent_overlapping_batches_neither_deadlock_nor_double(store: FeatureStore) -> None:
    """Eight writers with the same 2,000 keys in different orders and values: every call succeeds
    (rows are locked in key order) and each key ends up once, with one writer's value."""
    import random

    keys = vectors(2000, prefix="c", entities=200)
    writers = []
    for w in range(8):
        batch = [v.model_copy(update={"features": {"w": w}}) for v in keys]
        random.Random(w).shuffle(batch)
        writers.append(batch)
    written = await asyncio.gather(*(store.upsert(b) for b in writers))
    assert written[0] >= 0 and sum(written) >= 2000
    assert await store.count() == 2000
    finals = {v.features["w"] for v in (await store.latest_many([f"c{i}" for i in range(200)])).values()}
    assert finals <= set(range(8))
