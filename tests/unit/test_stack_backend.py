"""Backend choice: containers only when asked for, or when the testcontainers package and a Docker
engine are both present; a clear error naming what is missing when they are asked for and cannot
run. The container definitions (pinned images, ports, credentials, health checks) are checked
here without Docker; tests/integration/test_containers_live.py runs them where an engine exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from converge.checkout import REPO
from converge.stack import backend
from converge.stack.backend import BackendUnavailable, decide_backend, service_classes
from converge.stack.containers import IMAGES, PostgresContainer, RedisContainer, S3Container
from converge.stack.procs import free_port
from converge.stack.redis import Redis

CHART_VALUES = REPO / "charts" / "converge" / "values.yaml"


def yes() -> bool:
    return True


def no() -> bool:
    return False


def test_explicit_choices_are_kept() -> None:
    assert decide_backend("local", yes, yes) == "local"
    assert decide_backend(" Testcontainers ", yes, yes) == "testcontainers"


@pytest.mark.parametrize(
    ("installed", "engine", "chosen"),
    [(yes, yes, "testcontainers"), (yes, no, "local"), (no, yes, "local"), (no, no, "local")],
)
def test_auto_needs_both_the_package_and_an_engine(installed, engine, chosen) -> None:
    assert decide_backend("auto", installed, engine) == chosen


def test_asked_for_without_the_package_names_it() -> None:
    with pytest.raises(BackendUnavailable, match=r"testcontainers package.*converge\[dev\]"):
        decide_backend("testcontainers", no, yes)


def test_asked_for_without_an_engine_says_so() -> None:
    with pytest.raises(BackendUnavailable, match="Docker engine"):
        decide_backend("testcontainers", yes, no)


def test_the_dev_extra_installs_the_package() -> None:
    assert backend.testcontainers_installed()


def test_an_unknown_backend_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="kubernetes"):
        decide_backend("kubernetes", yes, yes)


def test_classes_per_backend() -> None:
    local = service_classes("local")
    assert local["redis"] is Redis
    containers = service_classes("testcontainers")
    assert (containers["postgres"], containers["redis"], containers["s3"]) == (
        PostgresContainer,
        RedisContainer,
        S3Container,
    )
    assert containers["pgbouncer"] is local["pgbouncer"] and containers["h2o"] is local["h2o"]


def test_images_are_the_ones_the_chart_pins() -> None:
    values = yaml.safe_load(CHART_VALUES.read_text())
    chart = {
        key: f"{values[section]['image']['repository']}:{values[section]['image']['tag']}"
        for key, section in (("postgres", "postgresql"), ("redis", "redis"), ("s3", "minio"))
    }
    assert IMAGES == chart
    assert all(":" in image and not image.endswith((":latest", ":")) for image in IMAGES.values())


def _spec(cls, tmp_path: Path):
    service = cls(tmp_path, free_port(pair=True))
    service._choose_ports()
    return service, service.spec()


def test_postgres_container_definition(tmp_path: Path) -> None:
    service, spec = _spec(PostgresContainer, tmp_path)
    assert spec.image == IMAGES["postgres"] and spec.network_mode == "host"
    assert spec.command[0] == "postgres" and "-D" not in spec.command
    assert spec.command[spec.command.index("-p") + 1] == str(service.port)
    assert "listen_addresses=127.0.0.1" in spec.command
    assert not any(arg.startswith("unix_socket_directories") for arg in spec.command)
    # the credentials the clients use are the ones the container is created with
    assert spec.env["POSTGRES_USER"] == service.user
    assert spec.env["POSTGRES_PASSWORD"] == service.password and service.password in service.dsn
    assert spec.env["POSTGRES_DB"] == service.database
    assert "scram-sha-256" in spec.env["POSTGRES_INITDB_ARGS"]
    assert spec.healthcheck[:1] == ["pg_isready"] and str(service.port) in spec.healthcheck


def test_redis_container_definition(tmp_path: Path) -> None:
    service = RedisContainer(tmp_path, free_port(), password="s3cret-pass")
    service._choose_ports()
    spec = service.spec()
    assert spec.image == IMAGES["redis"]
    assert spec.command[0] == "redis-server" and "--dir" not in spec.command
    assert spec.command[spec.command.index("--port") + 1] == str(service.port)
    assert spec.command[spec.command.index("--bind") + 1] == "127.0.0.1"
    assert spec.command[spec.command.index("--requirepass") + 1] == "s3cret-pass"
    assert "s3cret-pass" in service.url
    assert spec.healthcheck == ["redis-cli", "-h", "127.0.0.1", "-p", str(service.port), "ping"]
    assert spec.env == {"REDISCLI_AUTH": "s3cret-pass"}  # the health check authenticates


def test_s3_container_definition(tmp_path: Path) -> None:
    service, spec = _spec(S3Container, tmp_path)
    assert spec.image == IMAGES["s3"]
    assert spec.command[:2] == ["server", "/data"]
    assert spec.command[spec.command.index("--address") + 1] == f"127.0.0.1:{service.port}"
    console = spec.command[spec.command.index("--console-address") + 1]
    assert console == f"127.0.0.1:{service.ports['console']}" and service.ports["console"] != service.port
    assert (spec.env["MINIO_ROOT_USER"], spec.env["MINIO_ROOT_PASSWORD"]) == (service.access_key, service.secret_key)
    assert spec.env["MC_HOST_converge"].endswith(f"@127.0.0.1:{service.port}")
    assert spec.healthcheck == ["mc", "ready", "converge"]


def test_health_checks_reach_docker_in_its_units(tmp_path: Path) -> None:
    _, spec = _spec(RedisContainer, tmp_path)
    kwargs = spec.run_kwargs()
    assert kwargs["network_mode"] == "host"
    health = kwargs["healthcheck"]
    assert health["test"][0] == "CMD" and health["test"][1:] == spec.healthcheck
    assert health["interval"] == 1_000_000_000 and health["timeout"] == 5_000_000_000
    assert health["retries"] >= 10
