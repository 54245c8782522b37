"""Migrations run through PgBouncer (transaction pooling) and build the schema the code relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from converge import migrations
from converge.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(pgbouncer) -> Settings:
    return Settings(database_url=pgbouncer.dsn)


@pytest.fixture(scope="module")
def migrated(settings: Settings) -> Settings:
    migrations.upgrade(settings)
    return settings


def query(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        return conn.execute(sql, args).fetchall()


def test_upgrade_through_pgbouncer_reaches_head_and_is_repeatable(migrated: Settings, pgbouncer) -> None:
    head = migrations.head()
    assert head is not None
    assert migrations.current(migrated) == head
    # A second run (every deploy runs it) is a no-op.
    assert migrations.upgrade(migrated) == head
    assert query(pgbouncer.dsn, "SELECT version_num FROM alembic_version") == [(head,)]


def test_features_is_hash_partitioned_with_pk_and_gin(migrated: Settings, pgbouncer) -> None:
    dsn = pgbouncer.dsn
    (strategy,) = query(
        dsn, "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'features'::regclass"
    )[0]
    assert strategy == "h"
    parts = query(dsn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'features'::regclass")
    assert parts == [(8,)]
    pk = query(
        dsn,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'features'::regclass AND contype = 'p'",
    )
    assert pk == [("PRIMARY KEY (entity_id, event_time)",)]
    gin = query(dsn, "SELECT indexdef FROM pg_indexes WHERE indexname = 'features_vector_gin'")
    assert "USING gin (feature_vector jsonb_path_ops)" in gin[0][0]
    # The storage options reach every partition's index, not only the parent's.
    opts = query(
        dsn,
        """SELECT c.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'features_vector_gin'::regclass""",
    )
    assert len(opts) == 8
    assert all("fastupdate=on" in o and any(x.startswith("gin_pending_list_limit=") for x in o) for (o,) in opts)


def test_embedding_column_only_where_pgvector_exists(migrated: Settings, pgbouncer) -> None:
    dsn = pgbouncer.dsn
    available = bool(query(dsn, "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"))
    has_column = bool(
        query(
            dsn,
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'features' AND column_name = 'embedding'",
        )
    )
    assert has_column == available
    if not available:  # the case on this machine: the migration skipped it without failing
        assert migrations.current(migrated) == migrations.head()


def test_one_production_is_a_partial_unique_index(migrated: Settings, pgbouncer) -> None:
    rows = query(
        pgbouncer.dsn,
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'model_versions_one_production'",
    )
    assert rows
    assert "UNIQUE INDEX" in rows[0][0] and "WHERE (stage = 'production'::text)" in rows[0][0]


def test_downgrade_and_upgrade_round_trip_on_a_scratch_database(postgres) -> None:
    """Down to nothing and back up, on a database of its own so other tests keep their tables."""
    name = "converge_migration_roundtrip"
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} OWNER {postgres.user}")
    url = urlsplit(postgres.dsn)
    scratch = Settings(database_url=urlunsplit(url._replace(path=f"/{name}")))
    try:
        assert migrations.current(scratch) is None
        assert migrations.upgrade(scratch) == migrations.head()
        assert migrations.downgrade(scratch, "base") is None
        tables = query(
            scratch.database_url.get_secret_value(),
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename IN ('features', 'models', 'model_versions')",
        )
        assert tables == []
        # Two deploys racing (two processes running `converge migrate`): the advisory lock
        # serialises them, and the second finds nothing to do.
        env = {**os.environ, "CONVERGE_DATABASE_URL": scratch.database_url.get_secret_value()}
        argv = [sys.executable, "-c", "from converge.cli import app; app()", "migrate"]
        procs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert all(f"database at revision {migrations.head()}" in out for out in outputs)
        assert migrations.current(scratch) == migrations.head()
    finally:
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_migrate_command_through_pgbouncer(migrated: Settings, pgbouncer, monkeypatch) -> None:
    from typer.testing import CliRunner

    from converge.cli import app
    from converge.settings import get_settings

    monkeypatch.setenv("CONVERGE_DATABASE_URL", pgbouncer.dsn)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert f"database at revision {migrations.head()}" in result.output
        shown = runner.invoke(app, ["migrate", "--show"])
        assert shown.exit_code == 0 and f"current: {migrations.head()}" in shown.output
    finally:
        get_settings.cache_clear()
