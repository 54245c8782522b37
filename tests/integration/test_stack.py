"""The local stack: every service answers its real protocol, restarts on its port, stops cleanly."""

from __future__ import annotations

import asyncpg
import psycopg
import pytest

from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres

pytestmark = pytest.mark.integration


def test_postgres_accepts_the_app_role_with_scram(postgres: Postgres) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        user, db = conn.execute("SELECT current_user, current_database()").fetchone()
    assert (user, db) == ("converge", "converge")
    assert postgres.scram_secret().startswith("SCRAM-SHA-256$4096:")


def test_postgres_rejects_a_wrong_password(postgres: Postgres) -> None:
    bad = postgres.dsn.replace(":converge@", ":wrong@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad)


async def test_asyncpg_through_pgbouncer_in_transaction_mode(pgbouncer: PgBouncer) -> None:
    conn = await asyncpg.connect(pgbouncer.dsn, statement_cache_size=0)
    try:
        assert await conn.fetchval("SELECT current_user") == "converge"
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE t (x int) ON COMMIT DROP")
            await conn.execute("INSERT INTO t SELECT generate_series(1, 3)")
            assert await conn.fetchval("SELECT sum(x) FROM t") == 6
    finally:
        await conn.close()


def test_pgbouncer_rejects_a_wrong_password(pgbouncer: PgBouncer) -> None:
    bad = pgbouncer.dsn.replace(":converge@", ":wrong@")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(bad, prepare_threshold=None)


def test_pgbouncer_survives_a_postgres_restart(postgres: Postgres, pgbouncer: PgBouncer) -> None:
    port = postgres.port
    postgres.stop()
    assert not postgres.is_running()
    with pytest.raises(psycopg.OperationalError):
        with psycopg.connect(pgbouncer.dsn, prepare_threshold=None, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    postgres.start()
    assert postgres.port == port and not postgres.reused
    pgbouncer.wait_ready(30)
    with psycopg.connect(pgbouncer.dsn, prepare_threshold=None) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_pgbouncer_restarts_on_its_port(pgbouncer: PgBouncer) -> None:
    port = pgbouncer.port
    pgbouncer.stop()
    assert not pgbouncer.is_running()
    pgbouncer.start()
    assert pgbouncer.port == port
    with psycopg.connect(pgbouncer.dsn, prepare_threshold=None) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
