"""The stack reads credentials from Settings and writes a stack.env that Settings reads back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from converge.settings import Settings
from converge.stack.stack import Stack


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path,
        database_url="postgresql://app:p%40ss%20w%22rd@127.0.0.1:6001/feat",
        database_direct_url="postgresql://app:p%40ss%20w%22rd@127.0.0.1:6002/feat",
        redis_url="redis://:r%2Fpw@127.0.0.1:6003/0",
        s3_endpoint_url="http://127.0.0.1:6004",
        h2o_url="http://127.0.0.1:6005",
    )


def test_credentials_and_preferred_ports_come_from_settings(tmp_path: Path) -> None:
    stack = Stack(_settings(tmp_path))
    pg = stack.postgres
    assert (pg.user, pg.password, pg.database) == ("app", 'p@ss w"rd', "feat")
    assert stack.redis.password == "r/pw"
    preferred = {name: s._preferred_port for name, s in stack.services.items()}
    assert preferred == {
        "postgres": 6002,
        "pgbouncer": 6001,
        "redis": 6003,
        "s3": 6004,
        "h2o": 6005,
    }


def test_stack_env_round_trips_through_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("CONVERGE_")]:
        monkeypatch.delenv(key)  # the environment outranks the file
    stack = Stack(_settings(tmp_path), ports={"postgres": 7002, "pgbouncer": 7001, "redis": 7003})
    services = [stack.postgres, stack.pgbouncer, stack.redis]
    path = stack.write_env(services)
    assert path.stat().st_mode & 0o777 == 0o600
    back = Settings(_env_file=str(path))
    assert back.database_url.get_secret_value() == stack.pgbouncer.dsn
    assert back.database_direct_url.get_secret_value() == stack.postgres.dsn
    assert back.redis_url == stack.redis.url == "redis://:r%2Fpw@127.0.0.1:7003/0"
    assert back.state_dir == tmp_path
