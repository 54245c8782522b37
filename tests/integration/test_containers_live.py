"""The container backend for real: each service's container starts from its pinned image, serves
its protocol to the same clients as the local backend, passes Docker's own health check, and comes
back after a fault test's stop.

These tests need a Docker engine. This is the one skip CONVERGE_NO_SKIPS allows (the
``needs_docker_engine`` marker): machines without an engine run the same definitions through
tests/unit/test_stack_backend.py, and every other test through the local backend.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from converge.stack import backend
from converge.stack.containers import PostgresContainer, RedisContainer, S3Container
from converge.stack.procs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.needs_docker_engine]


@pytest.fixture(scope="module")
def engine() -> None:
    if not backend.docker_available():
        pytest.skip("no Docker engine answers `docker info` on this machine")
    assert backend.testcontainers_installed(), "the dev extra installs testcontainers"


def _health(service) -> str:
    wrapped = service._container.get_wrapped_container()
    wrapped.reload()
    return wrapped.attrs["State"].get("Health", {}).get("Status", "none")


@pytest.mark.parametrize("cls", [PostgresContainer, RedisContainer, S3Container], ids=lambda c: c.__name__)
def test_container_serves_is_healthy_and_restarts(engine, cls, tmp_path: Path) -> None:
    service = cls(tmp_path, free_port(pair=True))
    try:
        service.start(timeout=180)
        assert service.ready()
        deadline = time.monotonic() + 60
        while _health(service) != "healthy":
            assert time.monotonic() < deadline, f"{service.name}: Docker health {_health(service)}"
            time.sleep(1)
        service.stop()
        assert not service.is_running()
        service.start(timeout=120)
        assert service.ready()
    finally:
        service.stop()
        service.remove()
