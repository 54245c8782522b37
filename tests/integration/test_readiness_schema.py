"""A fresh install whose migrations have not run: predict's readiness says "schema missing",
and stops saying it once ``converge migrate`` has run."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from converge.checkout import REPO
from converge import migrations
from converge.serving.replica_sync import SCHEMA_MISSING
from converge.serving.testing import FunctionProcess, wait_until
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database(postgres, stack_settings):
    """Settings pointed at a database of its own with no tables (direct, as a fresh install)."""
    name = f"converge_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {postgres.user}")
    url = SecretStr(urlunsplit(urlsplit(postgres.dsn)._replace(path=f"/{name}")))
    yield stack_settings.model_copy(
        update={"database_url": url, "database_direct_url": url, "registry_poll_s": 1.0}
    )
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_readiness_names_the_missing_schema_until_migrations_run(empty_database, tmp_path):
    fn = FunctionProcess(
        "predict", REPO / "functions" / "main.py", empty_database, free_port(), tmp_path / "p.log"
    ).start()
    try:
        async with httpx.AsyncClient(base_url=fn.url, timeout=5.0) as client:

            async def reason() -> str | None:
                response = await client.get("/readyz")
                assert response.status_code == 503
                return response.json().get("reason")

            assert await wait_until(reason, timeout=30) == SCHEMA_MISSING
            migrations.upgrade(empty_database)

            async def schema_found() -> bool:
                return await reason() is None  # still not ready: no model yet, but no schema error

            await wait_until(schema_found, timeout=30)
    finally:
        fn.stop()
