"""Session fixtures: real local services on free ports in a temporary state directory.

Each service fixture yields the running service object. Fault tests may call ``stop()`` and then
``start()`` on it: it comes back on the same port, so clients reconnect. A service a test left
stopped is started again after that test, so one failing fault test does not cascade.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.procs import free_port
from converge.stack.service import Service

_started: list[Service] = []


def _start(service: Service) -> Service:
    try:
        service.start()
    except Exception as exc:  # a broken service fails the tests that need it, with its log
        service.stop()
        pytest.fail(f"could not start {service.name}: {exc}", pytrace=False)
    _started.append(service)
    return service


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory shared by every service of the test session."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def postgres(stack_dir: Path) -> Iterator[Postgres]:
    """Postgres 15 on a free port; ``.dsn`` (role ``converge``), ``.admin_dsn`` (superuser)."""
    service = _start(Postgres(stack_dir, free_port(), durable=False))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def pgbouncer(postgres: Postgres) -> Iterator[PgBouncer]:
    """PgBouncer (transaction pooling, SCRAM) in front of ``postgres``; ``.dsn`` goes through it.

    Queries fail after 3 s without a server, so outage tests are quick.
    """
    service = _start(PgBouncer(postgres.state_dir, postgres, free_port(), query_wait_timeout=3))
    yield service
    service.stop()


@pytest.fixture(autouse=True)
def _restart_stopped_services() -> Iterator[None]:
    """Bring back any service a fault test stopped and did not restart."""
    yield
    for service in list(_started):
        if not service.is_running():
            service.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Belt and braces: no process outlives the session, even if a fixture teardown was skipped."""
    for service in reversed(_started):
        if os.environ.get("CONVERGE_TEST_KEEP_STACK") != "1":
            service.stop()
