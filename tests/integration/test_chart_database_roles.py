"""The chart's Postgres init script, run on a real Postgres: the migration role builds the schema,
the functions' role reads and writes it through the real feature store and registry code, and
can create or drop nothing.

The script is taken from the rendered chart. It is a psql script; psql is not needed here: its
variables (``:"ident"``, ``:'literal'``) and ``\\connect`` are applied as psql applies them.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from converge import migrations
from converge.contracts import FeatureVector
from converge.db import create_pool
from converge.features import FeatureStore
from converge.registry import Registry
from converge.rollouts import Rollouts, Thresholds
from converge.settings import Settings

pytestmark = pytest.mark.integration


def _init_sql() -> str:
    from deploy_support import render

    script = render({}, "defaults").get("ConfigMap", "demo-converge-postgresql-init")["data"]["10-converge.sh"]
    body = script.split("<<'SQL'\n", 1)[1].rsplit("\nSQL", 1)[0]
    return textwrap.dedent(body)


def _substitute(line: str, variables: dict[str, str]) -> str:
    line = re.sub(r':"(\w+)"', lambda m: sql.Identifier(variables[m[1]]).as_string(None), line)
    return re.sub(r":'(\w+)'", lambda m: sql.Literal(variables[m[1]]).as_string(None), line)


def _dsn(base: str, database: str, user: str | None = None, password: str | None = None) -> str:
    url = urlsplit(base)
    netloc = url.netloc
    if user is not None:
        netloc = f"{quote(user)}:{quote(password or '')}@{url.hostname}:{url.port}"
    return urlunsplit(url._replace(netloc=netloc, path=f"/{database}"))


def _run_psql_script(admin_dsn: str, script: str, variables: dict[str, str]) -> None:
    database, statement = urlsplit(admin_dsn).path.lstrip("/"), ""
    conn = psycopg.connect(admin_dsn, autocommit=True)
    try:
        for line in script.splitlines():
            line = _substitute(line, variables)
            if line.startswith("\\connect "):
                conn.close()
                database = line.split(None, 1)[1].strip().strip('"')
                conn = psycopg.connect(_dsn(admin_dsn, database), autocommit=True)
                continue
            statement += line + "\n"
            if line.rstrip().endswith(";"):
                conn.execute(statement)
                statement = ""
    finally:
        conn.close()


@pytest.fixture
def chart_database(postgres):
    tag = uuid.uuid4().hex[:8]
    names = {
        "user": f"app_{tag}", "pw": uuid.uuid4().hex, "db": f"converge_{tag}",
        "magedb": f"mage_{tag}", "migrator": f"migrator_{tag}", "migratorpw": uuid.uuid4().hex,
        "predict": f"app_{tag}_predict", "predictpw": uuid.uuid4().hex,
        "ingest": f"app_{tag}_ingest", "ingestpw": uuid.uuid4().hex,
    }  # fmt: skip
    _run_psql_script(postgres.admin_dsn, _init_sql(), names)
    yield names
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        for db in (names["db"], names["magedb"]):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        for role in (names["user"], names["predict"], names["ingest"], names["migrator"]):
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def test_migrator_builds_the_schema_and_the_functions_role_only_uses_it(
    postgres, chart_database, monkeypatch
):
    n = chart_database
    # as the chart's migration Job: grants go to the application role's _predict and _ingest roles
    monkeypatch.setenv("CONVERGE_DATABASE_APP_ROLE", n["user"])
    migrator = _dsn(postgres.dsn, n["db"], n["migrator"], n["migratorpw"])
    app = _dsn(postgres.dsn, n["db"], n["user"], n["pw"])

    # the functions' role cannot build the schema ...
    with pytest.raises(Exception, match="permission denied"):
        migrations.upgrade(Settings(database_url=app))
    # ... the migration role can, and a second run (every upgrade) changes nothing
    assert migrations.upgrade(Settings(database_url=migrator)) == migrations.head()
    assert migrations.upgrade(Settings(database_url=migrator)) == migrations.head()

    pool = await create_pool(Settings(database_url=app), min_size=0)
    try:
        store = FeatureStore(pool)
        vector = FeatureVector(entity_id="e1", event_time="2024-05-01T00:00:00Z", features={"x": 1.5})
        assert await store.upsert([vector]) == 1
        assert (await store.latest("e1")).features == {"x": 1.5}
        mv = await Registry(pool).register("m", artifact_uri="s3://models/m/1/model.zip", sha256="0" * 64)
        assert mv.version == 1
        # the admin API (this role) starts rollouts in the table the migration role created
        await Registry(pool).promote("m", 1)
        await Registry(pool).register("m", artifact_uri="s3://models/m/2/model.zip", sha256="0" * 64)
        rollout = await Rollouts(pool).start("m", 2, "canary", 10.0, Thresholds())
        assert (rollout.baseline, rollout.state) == (1, "active")
    finally:
        await pool.close()

    with psycopg.connect(app) as conn:
        for statement in ("CREATE TABLE intruder (x int)", "DROP TABLE features", "ALTER TABLE models ADD COLUMN y int"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()


async def test_the_functions_own_roles_get_only_their_grants(postgres, chart_database, monkeypatch):
    n = chart_database
    monkeypatch.setenv("CONVERGE_DATABASE_APP_ROLE", n["user"])
    migrations.upgrade(Settings(database_url=_dsn(postgres.dsn, n["db"], n["migrator"], n["migratorpw"])))
    ingest = _dsn(postgres.dsn, n["db"], n["ingest"], n["ingestpw"])
    predict = _dsn(postgres.dsn, n["db"], n["predict"], n["predictpw"])

    pool = await create_pool(Settings(database_url=ingest), min_size=0)
    try:
        vector = FeatureVector(entity_id="e2", event_time="2024-05-01T00:00:00Z", features={"x": 2.0})
        assert await FeatureStore(pool).upsert([vector]) == 1
    finally:
        await pool.close()
    with psycopg.connect(predict) as conn:
        assert conn.execute("SELECT count(*) FROM features").fetchone() == (1,)
        for statement in ("DELETE FROM features", "INSERT INTO models (name) VALUES ('x')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
    with psycopg.connect(ingest) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM model_versions")
    # rollouts: predict reads them and records a decision, nothing more
    with psycopg.connect(predict) as conn:
        assert conn.execute("SELECT count(*) FROM rollouts").fetchone() == (0,)
        conn.execute("UPDATE rollouts SET state = 'rolled_back', reason = 'r', stats = '{}', decided_at = now()")
        for statement in (
            "UPDATE rollouts SET candidate = 1",
            "UPDATE rollouts SET percent = 100",
            "INSERT INTO rollouts (name, candidate, baseline, mode, percent) VALUES ('x', 1, 1, 'canary', 5)",
            "DELETE FROM rollouts",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
