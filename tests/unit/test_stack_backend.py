"""Backend choice: containers only when a Docker engine answers; a clear error when they cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from converge.stack.backend import choose_backend, docker_available, service_classes
from converge.stack.containers import PostgresContainer, RedisContainer, S3Container
from converge.stack.procs import free_port
from converge.stack.redis import Redis
from converge.stack.service import ServiceError


def test_explicit_choices_are_kept() -> None:
    assert choose_backend("local") == "local"
    assert choose_backend(" Testcontainers ") == "testcontainers"


def test_auto_follows_the_docker_engine() -> None:
    assert choose_backend("auto") == ("testcontainers" if docker_available() else "local")


def test_an_unknown_backend_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="kubernetes"):
        choose_backend("kubernetes")


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


@pytest.mark.skipif(docker_available(), reason="a Docker engine would start the container")
def test_containers_without_docker_fail_with_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="testcontainers|container"):
        RedisContainer(tmp_path, free_port()).start(timeout=30)
