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
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from converge.contracts import FeatureVector  # noqa: E402
from converge.db import create_pool  # noqa: E402
from converge.features import FeatureStore  # noqa: E402
from converge.settings import Settings  # noqa: E402

SECTION = "## Feature ingest"
PARTITIONS = 8


@dataclass
class Variant:
    name: str
    index: str | None  # the CREATE INDEX tail after "USING gin", or None for no GIN
    note: str


VARIANTS = [
    Variant("no-gin", None, "baseline: primary key only"),
    Variant("ops-nofastupdate", "(feature_vector jsonb_ops) WITH (fastupdate = off)",
            "jsonb_ops, every insert goes straight into the tree"),
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


async def run(dsn: str, rows: int, batch: int) -> list[dict]:
    pool = await create_pool(Settings(database_url=dsn), min_size=1, max_size=2, command_timeout=600)
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
            start = time.perf_counter()
            written = 0
            for b in batches:
                written += await store.upsert(b)
            ingest_s = time.perf_counter() - start
            start = time.perf_counter()
            await gin_cleanup(pool, schema)
            cleanup_s = time.perf_counter() - start
            assert written == rows, (variant.name, written)
            redeliver_s = None
            if variant.name in ("no-gin", "path-default"):
                start = time.perf_counter()
                again = sum([await store.upsert(b) for b in batches])
                redeliver_s = time.perf_counter() - start
                assert again == 0, again
            results.append(
                {
                    "variant": variant,
                    "ingest_s": ingest_s,
                    "cleanup_s": cleanup_s,
                    "redeliver_s": redeliver_s,
                    "gin_mb": await index_size(pool, schema) / 2**20,
                }
            )
            await pool.execute(f"DROP SCHEMA {schema} CASCADE")
            print(f"{variant.name:18s} {rows / ingest_s:9.0f} rows/s  cleanup {cleanup_s:5.2f}s", flush=True)
    finally:
        await pool.close()
    return results


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def render(results: list[dict], rows: int, batch: int, pg_version: str, took_s: float) -> str:
    base = rows / results[0]["ingest_s"]
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_ingest.py --rows {rows} --batch {batch}` "
        f"({datetime.now(UTC):%Y-%m-%d}, {took_s:.0f} s wall).",
        f"Machine: {machine()}; {pg_version}, durable settings (fsync on). The machine is shared, so",
        "absolute rates are noisy; ratios within one run are the comparable part.",
        "",
        f"{rows:,} vectors of 18 keys, upserted in batches of {batch:,} through `FeatureStore.upsert`",
        "(COPY into a temp table, `INSERT ... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM`, one",
        "transaction per batch) into 8 hash partitions with the primary key. \"+cleanup\" adds the time",
        "to merge the GIN pending lists afterwards (`gin_clean_pending_list`, autovacuum's deferred work).",
        "",
        "| variant | rows/s | vs no GIN | rows/s incl. cleanup | vs no GIN | GIN MB (after cleanup) | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        v = r["variant"]
        rate = rows / r["ingest_s"]
        full = rows / (r["ingest_s"] + r["cleanup_s"])
        lines.append(
            f"| {v.name} | {rate:,.0f} | {rate / base:.2f} | {full:,.0f} | {full / base:.2f} "
            f"| {r['gin_mb']:.1f} | {v.note} |"
        )
    for r in results:
        if r["redeliver_s"]:
            lines.append("")
            lines.append(
                f"Redelivery of the same {rows:,} rows into `{r['variant'].name}` (every row conflicts, "
                f"nothing changes, 0 written): {rows / r['redeliver_s']:,.0f} rows/s."
            )
    lines += ["", ""]
    return "\n".join(lines)


def write_section(text: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace our section (up to the next ``## `` heading) and leave the others alone."""
    current = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated.rstrip("\n") + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--dsn", default=os.environ.get("CONVERGE_BENCH_DATABASE_URL"))
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()

    started = time.perf_counter()
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
    text = render(results, args.rows, args.batch, f"PostgreSQL {pg_version}", time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
