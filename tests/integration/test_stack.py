"""The local stack: every service answers its real protocol, restarts on its port, stops cleanly."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import psycopg
import pytest
import redis
from botocore.exceptions import ClientError, EndpointConnectionError

from converge.settings import Settings, get_settings
from converge.stack import scram
from converge.stack.h2o import H2O
from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.procs import free_port
from converge.stack.redis import Redis
from converge.stack.s3 import S3

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
    with (
        pytest.raises(psycopg.OperationalError),
        psycopg.connect(pgbouncer.dsn, prepare_threshold=None, connect_timeout=3) as conn,
    ):
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


def test_postgres_secret_matches_what_the_stack_computes(postgres: Postgres) -> None:
    """Set-up leaves an unchanged password alone only if this check agrees with Postgres."""
    secret = postgres.scram_secret()
    assert scram.matches(secret, postgres.password)
    assert not scram.matches(secret, postgres.password + "x")


def test_redis_answers_and_restarts_on_its_port(redis_server: Redis) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("k", "v")
    port = redis_server.port
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    redis_server.start()
    assert redis_server.port == port
    assert client.ping()  # the client reconnects by itself
    assert client.get("k") is None  # no persistence: a restart is a cold cache
    client.close()


def test_s3_put_get_and_restart(s3_server: S3) -> None:
    client = s3_server.client()
    body = os.urandom(4096)
    client.put_object(Bucket=s3_server.bucket, Key="models/x/1.zip", Body=body)
    s3_server.stop()
    with pytest.raises(EndpointConnectionError):
        client.get_object(Bucket=s3_server.bucket, Key="models/x/1.zip")
    s3_server.start()
    got = client.get_object(Bucket=s3_server.bucket, Key="models/x/1.zip")["Body"].read()
    assert got == body  # objects survive a restart


def test_s3_rejects_unknown_keys(s3_server: S3) -> None:
    intruder = S3(s3_server.state_dir, access_key="nobody", secret_key="wrong")
    intruder.ports = dict(s3_server.ports)
    with pytest.raises(ClientError):
        intruder.client().list_objects_v2(Bucket=s3_server.bucket)


def test_every_service_listens_on_loopback_only(
    postgres: Postgres, pgbouncer: PgBouncer, redis_server: Redis, s3_server: S3
) -> None:
    pids = {s.pid for s in (postgres, pgbouncer, redis_server, s3_server)}
    listening = _listeners(pids)
    assert listening, "no listening sockets found for the services"
    assert {addr for addr, _ in listening} == {"127.0.0.1"}
    assert {port for _, port in listening} >= {postgres.port, pgbouncer.port, redis_server.port}
    assert set(s3_server.ports.values()) >= {
        port for _, port in listening if port in s3_server.ports.values()
    }


def test_stack_settings_point_at_the_services(
    stack_settings: Settings, pgbouncer: PgBouncer, s3_server: S3
) -> None:
    assert stack_settings.database_url.get_secret_value() == pgbouncer.dsn
    assert os.environ["CONVERGE_DATABASE_URL"] == pgbouncer.dsn
    assert get_settings().s3_endpoint_url == s3_server.url
    code = "from converge.settings import get_settings as g; print(g().redis_url)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == stack_settings.redis_url


def test_h2o_forms_a_one_node_cloud_on_loopback(h2o_server: H2O, stack_settings: Settings) -> None:
    cloud = h2o_server.cloud()
    assert cloud["cloud_healthy"] and cloud["cloud_size"] == 1
    assert cloud["cloud_name"] == h2o_server.cloud_name
    assert [node["ip_port"] for node in cloud["nodes"]] == [f"127.0.0.1:{h2o_server.port}"]
    assert stack_settings.h2o_url == h2o_server.url
    assert {addr for addr, _ in _listeners({h2o_server.pid})} == {"127.0.0.1"}


def _listeners(pids: set[int | None]) -> set[tuple[str, int]]:
    """(address, port) of the TCP listening sockets owned by ``pids``, read from /proc."""
    inodes: set[str] = set()
    for pid in filter(None, pids):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((str(ipaddress.ip_address(words)), int(port_hex, 16)))
    return found


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from converge.cli import app; app()", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_up_is_idempotent_and_down_leaves_no_process(tmp_path: Path) -> None:
    """Two `up`s share one set of processes; a taken preferred port falls back to a free one."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    env = {
        "CONVERGE_STATE_DIR": str(tmp_path),
        "CONVERGE_STACK_BACKEND": "local",
        "CONVERGE_DATABASE_DIRECT_URL": f"postgresql://converge:pw@127.0.0.1:{free_port()}/converge",
        "CONVERGE_DATABASE_URL": f"postgresql://converge:pw@127.0.0.1:{free_port()}/converge",
        "CONVERGE_REDIS_URL": f"redis://127.0.0.1:{taken_port}/0",
        "CONVERGE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
    }
    try:
        with taken:
            first = _cli("up", "--no-h2o", "--json", env=env)
            assert first.returncode == 0, first.stderr
            second = _cli("up", "--no-h2o", "--json", env=env)
            assert second.returncode == 0, second.stderr
        _check_up(json.loads(first.stdout), json.loads(second.stdout), env, tmp_path, taken_port)
        status = json.loads(_cli("status", "--json", env=env).stdout)
        assert [s["running"] for s in status["services"]] == [True, True, True, True, False]
    finally:
        down = _cli("down", env=env)
    assert down.returncode == 0, down.stderr
    pids = [s["pid"] for s in json.loads(first.stdout)["services"]]
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert not (tmp_path / "stack.env").exists()
    status = json.loads(_cli("status", "--json", env=env).stdout)
    assert not any(s["running"] for s in status["services"])


def _check_up(one: dict, two: dict, env: dict[str, str], state: Path, taken_port: int) -> None:
    pids = {s["name"]: s["pid"] for s in one["services"]}
    assert pids == {s["name"]: s["pid"] for s in two["services"]}
    assert [s["reused"] for s in two["services"]] == [True] * 4
    redis_port = next(s["ports"]["main"] for s in one["services"] if s["name"] == "redis")
    assert redis_port != taken_port
    assert one["env"]["CONVERGE_DATABASE_URL"] == env["CONVERGE_DATABASE_URL"]
    env_file = (state / "stack.env").read_text()
    assert f"CONVERGE_REDIS_URL=redis://127.0.0.1:{redis_port}/0" in env_file
    with psycopg.connect(one["env"]["CONVERGE_DATABASE_URL"], prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("converge",)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {"CONVERGE_STATE_DIR": str(tmp_path), "CONVERGE_STACK_BACKEND": "kubernetes"}
    done = _cli("up", "--no-h2o", env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "stack_backend" in done.stderr


def test_pgbouncer_starts_while_postgres_is_down(postgres: Postgres, pgbouncer: PgBouncer) -> None:
    """Clients get a pooler that fails queries quickly, and it recovers when Postgres returns."""
    pgbouncer.stop()
    postgres.stop()
    pgbouncer.start()
    with (
        pytest.raises(psycopg.OperationalError),
        psycopg.connect(pgbouncer.dsn, prepare_threshold=None) as conn,
    ):
        conn.execute("SELECT 1")
    postgres.start()
    pgbouncer.wait_ready(30)
    with psycopg.connect(pgbouncer.dsn, prepare_threshold=None) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
