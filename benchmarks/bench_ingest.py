"""Feature ingest: COPY-upsert throughput of FeatureStore.upsert under GIN index variants.

Every variant gets the production table shape (8 hash partitions on entity_id, primary key
(entity_id, event_time)) in its own schema and the same pre-generated 18-key vectors, written in
batches through the real upsert path (COPY into a temp table, INSERT ... ON CONFLICT). The table
without a GIN index is the baseline; every other variant is reported as a ratio of it. GIN's
``fastupdate`` defers work to a pending list, so the time to merge that list afterwards
(``gin_clean_pending_list``, what autovacuum would do) is measured too and shown as a second rate.

Usage:  python benchmarks/bench_ingest.py [--rows 100000] [--batch 10000] [--dsn URL] [--no-write]

Without ``--dsn`` it starts a throw-away Postgres (durable settings) in a temporary directory.
Results replace the "## Feature ingest" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


from converge.contracts import FeatureVector  # noqa: E402
from converge.db import create_pool  # noqa: E402
from converge.features import FeatureStore  # noqa: E402
from converge.settings import Settings  # noqa: E402
from _report import machine, write_section  # noqa: E402

SECTION = "## Feature ingest"
PARTITIONS = 8


@dataclass
class Variant:
    name: str
    index: str | None  # the CREATE INDEX tail after "USING gin", or None for no GIN
    note: str
    # Cap for variants so slow that the full row count would blow the time budget.
    max_rows: int | None = None


VARIANTS = [
    Variant("no-gin", None, "baseline: primary key only"),
    Variant("ops-nofastupdate", "(feature_vector jsonb_ops) WITH (fastupdate = off)",
            "jsonb_ops, every insert straight into the tree; first 20,000 rows only (too slow for "
            "the budget; a smaller index flatters it)", max_rows=20_000),
    Variant("ops-default", "(feature_vector jsonb_ops)", "jsonb_ops, Postgres defaults (fastupdate on, 4 MB list)"),
    Variant("ops-64mb", "(feature_vector jsonb_ops) WITH (fastupdate = on, gin_pending_list_limit = 65536)",
            "jsonb_ops, 64 MB pending list"),
    Variant("path-default", "(feature_vector jsonb_path_ops)",
            "jsonb_path_ops, fastupdate on, 4 MB list (shipped in migration 0001)"),
    Variant("path-64mb", "(feature_vector jsonb_path_ops) WITH (fastupdate = on, gin_pending_list_limit = 65536)",
            "jsonb_path_ops, 64 MB pending list"),
]  # fmt: skip


def make_vectors(rows: int, seed: int = 7) -> list[FeatureVector]:
    """18 keys per vector: 8 floats, 4 ints, 4 categoricals, 2 booleans; ~10 events per entity."""
    rnd = random.Random(seed)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    cats = [f"c{i}" for i in range(40)]
    out = []
    entities = max(rows // 10, 1)
    for i in range(rows):
        feats: dict[str, object] = {f"f{k}": round(rnd.gauss(0, 1), 6) for k in range(8)}
        feats.update({f"n{k}": rnd.randrange(0, 10_000) for k in range(4)})
        feats.update({f"s{k}": rnd.choice(cats) for k in range(4)})
        feats.update({"b0": rnd.random() < 0.5, "b1": rnd.random() < 0.1})
        out.append(
            FeatureVector.model_construct(
                entity_id=f"ent-{i % entities:07d}",
                event_time=t0 + timedelta(minutes=i // entities),
                features=feats,
            )
        )
    return out


async def create_table(pool, schema: str, variant: Variant) -> None:
    async with pool.acquire() as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(
            f"""CREATE TABLE {schema}.features (
                  entity_id text NOT NULL, event_time timestamptz NOT NULL,
                  feature_vector jsonb NOT NULL, ingested_at timestamptz NOT NULL DEFAULT now(),
                  PRIMARY KEY (entity_id, event_time),
                  CHECK (jsonb_typeof(feature_vector) = 'object')
                ) PARTITION BY HASH (entity_id)"""
        )
        for i in range(PARTITIONS):
            # Autovacuum off here so the cleanup we time is not done behind our back.
            await conn.execute(
                f"CREATE TABLE {schema}.features_p{i} PARTITION OF {schema}.features "
                f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i}) "
                "WITH (autovacuum_enabled = off)"
            )
        if variant.index:
            await conn.execute(f"CREATE INDEX ON {schema}.features USING gin {variant.index}")


async def gin_cleanup(pool, schema: str) -> None:
    """Merge every partition's pending list into the main tree (autovacuum's deferred work)."""
    async with pool.acquire() as conn:
        names = await conn.fetch(
            """SELECT i.indexrelid::regclass::text AS idx FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE a.amname = 'gin' AND n.nspname = $1 AND c.relkind = 'i'""",
            schema,
        )
        for r in names:
            await conn.execute("SELECT gin_clean_pending_list($1::regclass)", r["idx"])


async def index_size(pool, schema: str) -> int:
    return int(
        await pool.fetchval(
            """SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam
               WHERE n.nspname = $1 AND a.amname = 'gin' AND c.relkind = 'i'""",
            schema,
        )
    )


def backend_cpu_s(pid: int | None) -> float | None:
    """CPU seconds a local Postgres backend has used: much steadier than wall time on a shared
    machine. None when the server is not on this host."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(dsn: str, rows: int, batch: int) -> list[dict]:
    # One connection, so one server backend does all the work and its CPU time can be read.
    pool = await create_pool(Settings(database_url=dsn), min_size=1, max_size=1, command_timeout=600)
    pid = await pool.fetchval("SELECT pg_backend_pid()")
    if backend_cpu_s(pid) is None:
        pid = None
    vectors = make_vectors(rows)
    batches = [vectors[i : i + batch] for i in range(0, rows, batch)]
    results = []
    try:
        for variant in VARIANTS:
            schema = "bench_" + variant.name.replace("-", "_")
            await create_table(pool, schema, variant)
            store = FeatureStore(pool, table=f"{schema}.features")
            try:  # start each variant without a previous variant's dirty buffers
                await pool.execute("CHECKPOINT")
            except Exception:  # noqa: BLE001 - needs pg_checkpoint; optional
                pass
            n = min(rows, variant.max_rows or rows)
            todo = [v for v in batches if v][: -(-n // batch)]
            todo[-1] = todo[-1][: n - batch * (len(todo) - 1)]
            cpu0, t0 = backend_cpu_s(pid), time.perf_counter()
            written = 0
            for b in todo:
                written += await store.upsert(b)
            cpu1, t1 = backend_cpu_s(pid), time.perf_counter()
            await gin_cleanup(pool, schema)
            cpu2, t2 = backend_cpu_s(pid), time.perf_counter()
            assert written == n, (variant.name, written)
            r = {
                "variant": variant,
                "rows": n,
                "ingest_s": t1 - t0,
                "cleanup_s": t2 - t1,
                "cpu_ingest_s": None if pid is None else cpu1 - cpu0,
                "cpu_total_s": None if pid is None else cpu2 - cpu0,
                "redeliver_s": None,
                "cpu_redeliver_s": None,
            }
            if variant.name in ("no-gin", "path-default"):
                cpu3, t3 = backend_cpu_s(pid), time.perf_counter()
                again = 0
                for b in todo:
                    again += await store.upsert(b)
                assert again == 0, again
                r["redeliver_s"] = time.perf_counter() - t3
                r["cpu_redeliver_s"] = None if pid is None else backend_cpu_s(pid) - cpu3
            r["gin_mb"] = await index_size(pool, schema) / 2**20
            results.append(r)
            await pool.execute(f"DROP SCHEMA {schema} CASCADE")
            print(
                f"{variant.name:18s} {n / r['ingest_s']:9.0f} rows/s  "
                f"cpu {_us(r['cpu_ingest_s'], n)} us/row  cleanup {r['cleanup_s']:5.2f}s",
                flush=True,
            )
    finally:
        await pool.close()
    return results


def _us(seconds: float | None, rows: int) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e6 / rows:.1f}"


def _per_row(seconds: float | None, rows: int) -> float | None:
    return None if seconds is None else seconds / rows


def render(
    results: list[dict], rows: int, batch: int, pg_version: str, took_s: float, load: str
) -> str:
    base = results[0]["rows"] / results[0]["ingest_s"]
    base_cpu = _per_row(results[0]["cpu_ingest_s"], results[0]["rows"])
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_ingest.py --rows {rows} --batch {batch}` "
        f"({datetime.now(UTC):%Y-%m-%d}, {took_s:.0f} s wall).",
        f"Machine: {machine()}; {pg_version}, durable settings (fsync on).",
        f"Load average before/after: {load}. The machine is shared, so wall-clock rates are noisy;",
        "the server CPU per row (the backend's own CPU time, from /proc) is the steadier measure,",
        "and ratios within one run are the comparable part.",
        "",
        f"{rows:,} vectors of 18 keys, upserted in batches of {batch:,} through `FeatureStore.upsert`",
        "(COPY into a temp table, `INSERT ... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM`, one",
        'transaction per batch) into 8 hash partitions with the primary key. "Incl. cleanup" adds',
        "merging the GIN pending lists afterwards (`gin_clean_pending_list`: the work autovacuum or a",
        "later insert would do otherwise). fastupdate moves that cost; it does not remove it.",
        "",
        "| variant | rows/s | vs no GIN | server CPU us/row | CPU vs no GIN "
        "| rows/s incl. cleanup | CPU us/row incl. cleanup | GIN MB | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        v, n = r["variant"], r["rows"]
        rate = n / r["ingest_s"]
        full = n / (r["ingest_s"] + r["cleanup_s"])
        cpu_ratio = "n/a"
        if base_cpu and r["cpu_ingest_s"] is not None:
            cpu_ratio = f"{_per_row(r['cpu_ingest_s'], n) / base_cpu:.2f}"
        lines.append(
            f"| {v.name} | {rate:,.0f} | {rate / base:.2f} | {_us(r['cpu_ingest_s'], n)} "
            f"| {cpu_ratio} | {full:,.0f} | {_us(r['cpu_total_s'], n)} | {r['gin_mb']:.1f} "
            f"| {v.note} |"
        )
    lines.append("")
    gin = [r for r in results if r["variant"].index]
    if all(r["cpu_total_s"] is not None for r in gin):
        best = min(gin, key=lambda r: r["cpu_total_s"] / r["rows"])
        how = "least server CPU per row including cleanup"
    else:
        best = max(gin, key=lambda r: r["rows"] / (r["ingest_s"] + r["cleanup_s"]))
        how = "highest rate including cleanup"
    lines.append(
        f"- GIN variant with the {how} in this run: `{best['variant'].name}`. Migration 0001 ships "
        "`path-default` (`jsonb_path_ops`, fastupdate on, 4 MB pending list per partition, "
        "autovacuum triggered by inserts); a bigger list only defers the merge."
    )
    for r in results:
        if r["redeliver_s"]:
            lines.append(
                f"- Redelivery of the same {rows:,} rows into `{r['variant'].name}` (every row "
                f"conflicts, nothing changes, 0 written): {r['rows'] / r['redeliver_s']:,.0f} "
                f"rows/s, {_us(r['cpu_redeliver_s'], r['rows'])} us/row server CPU."
            )
    lines += ["", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--dsn", default=os.environ.get("CONVERGE_BENCH_DATABASE_URL"))
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    server = None
    tmp = None
    dsn = args.dsn
    if not dsn:
        from converge.stack.postgres import Postgres
        from converge.stack.procs import free_port

        tmp = tempfile.TemporaryDirectory(prefix="converge-bench-")
        server = Postgres(Path(tmp.name), free_port(), durable=True)
        server.start()
        dsn = server.dsn
    try:
        results = asyncio.run(run(dsn, args.rows, args.batch))
        pg_version = subprocess.run(
            [sys.executable, "-c", "import psycopg,sys; c=psycopg.connect(sys.argv[1]);"
             "print(c.execute('show server_version').fetchone()[0].split()[0])", dsn],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()
    load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    took = time.perf_counter() - started
    text = render(results, args.rows, args.batch, f"PostgreSQL {pg_version}", took, load)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
