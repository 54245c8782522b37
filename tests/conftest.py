"""Session fixtures: real local services on free ports in a temporary state directory.

Each service fixture yields the running service object. Fault tests may call ``stop()`` and then
``start()`` on it: it comes back on the same port, so clients reconnect. A service a test left
stopped is started again after that test, so one failing fault test does not cascade.
H2O is heavy: it starts only when a test asks for ``h2o_server``.

``CONVERGE_STACK_BACKEND`` (auto|local|testcontainers) picks containers for Postgres, Redis and S3
when a Docker engine answers; the fixtures and their API are the same either way.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from converge.settings import Settings, get_settings
from converge.stack.backend import choose_backend, service_classes
from converge.stack.h2o import H2O
from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.procs import free_port
from converge.stack.redis import Redis
from converge.stack.s3 import S3
from converge.stack.service import PortInUse, Service

_started: list[Service] = []
_BACKEND = choose_backend(os.environ.get("CONVERGE_STACK_BACKEND", "auto"))
_CLASSES = service_classes(_BACKEND)


def _start(make: Callable[[int], Service], *, pair: bool = False) -> Service:
    """Start ``make(free_port)``; another process may grab the port first, so retry a few times."""
    for attempt in range(3):
        service = make(free_port(pair=pair))
        try:
            service.start()
        except PortInUse:
            if attempt == 2:
                raise
            continue
        except Exception as exc:  # noqa: BLE001 - a broken service fails its tests, with its log
            service.stop()
            pytest.fail(f"could not start {service.name}: {exc}", pytrace=False)
        _started.append(service)
        return service
    raise AssertionError("unreachable")


def _stop(service: Service) -> None:
    service.stop()
    remove = getattr(service, "remove", None)  # containers: delete, not just stop
    if remove is not None:
        remove()
    if service in _started:
        _started.remove(service)


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory shared by every service of the test session."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def postgres(stack_dir: Path) -> Iterator[Postgres]:
    """Postgres on a free port; ``.dsn`` (role ``converge``), ``.admin_dsn`` (superuser)."""
    service = _start(lambda port: _CLASSES["postgres"](stack_dir, port, durable=False))
    yield service
    _stop(service)


@pytest.fixture(scope="session")
def pgbouncer(postgres: Postgres) -> Iterator[PgBouncer]:
    """PgBouncer (transaction pooling, SCRAM) in front of ``postgres``; ``.dsn`` goes through it.

    Queries fail after 3 s without a server, so outage tests are quick.
    """
    service = _start(
        lambda port: _CLASSES["pgbouncer"](postgres.state_dir, postgres, port, query_wait_timeout=3)
    )
    yield service
    _stop(service)


@pytest.fixture(scope="session")
def redis_server(stack_dir: Path) -> Iterator[Redis]:
    """Redis without persistence on a free port; ``.url``."""
    service = _start(lambda port: _CLASSES["redis"](stack_dir, port))
    yield service
    _stop(service)


@pytest.fixture(scope="session")
def s3_server(stack_dir: Path) -> Iterator[S3]:
    """SeaweedFS S3 on free ports with the models bucket; ``.url``, ``.bucket``, ``.client()``."""
    service = _start(lambda port: _CLASSES["s3"](stack_dir, port))
    yield service
    _stop(service)


@pytest.fixture(scope="session")
def _h2o(stack_dir: Path) -> H2O:
    """H2O's address, reserved up front so ``stack_settings`` can name it before it runs."""
    heap = os.environ.get("CONVERGE_TEST_H2O_HEAP", "1g")
    return H2O(stack_dir, free_port(pair=True), heap=heap)


@pytest.fixture(scope="session")
def h2o_server(_h2o: H2O) -> Iterator[H2O]:
    """A one-node H2O cluster (started on first use); ``.url``, ``.cloud()``."""
    service = _start(lambda port: _h2o)
    yield service
    _stop(service)


@pytest.fixture(scope="session")
def stack_settings(
    stack_dir: Path,
    postgres: Postgres,
    pgbouncer: PgBouncer,
    redis_server: Redis,
    s3_server: S3,
    _h2o: H2O,
) -> Iterator[Settings]:
    """Settings pointed at the test services; the same ``CONVERGE_*`` variables are exported for
    subprocesses and ``get_settings()`` for the session. ``h2o_url`` answers only once a test has
    requested ``h2o_server``."""
    keys = {"publish_key": secrets.token_urlsafe(24), "ingest_token": secrets.token_urlsafe(24)}
    env = {
        "CONVERGE_STATE_DIR": str(stack_dir),
        "CONVERGE_STACK_BACKEND": _BACKEND,
        **{f"CONVERGE_{name.upper()}": value for name, value in keys.items()},
        **postgres.env(),
        **pgbouncer.env(),
        **redis_server.env(),
        **s3_server.env(),
        **_h2o.env(),
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    get_settings.cache_clear()
    try:
        yield Settings(
            state_dir=stack_dir,
            stack_backend=_BACKEND,
            database_url=pgbouncer.dsn,
            database_direct_url=postgres.dsn,
            redis_url=redis_server.url,
            s3_endpoint_url=s3_server.url,
            s3_access_key=s3_server.access_key,
            s3_secret_key=s3_server.secret_key,
            s3_bucket=s3_server.bucket,
            s3_region=s3_server.region,
            h2o_url=_h2o.url,
            h2o_heap=_h2o.heap,
            **{name: SecretStr(value) for name, value in keys.items()},
        )
    finally:
        patch.undo()
        get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _restart_stopped_services() -> Iterator[None]:
    """Bring back any service a fault test stopped and did not restart."""
    yield
    for service in _started:
        if not service.is_running():
            service.start()




@pytest.fixture(scope="module")
async def pool(settings):
    """A pool on the requesting module's own ``settings`` fixture, with the schema at head."""
    from converge.db import create_pool
    from converge.serving.testing import migrate

    await migrate(settings)
    pool = await create_pool(settings, min_size=0)
    yield pool
    await pool.close()


# -- no test may disappear ---------------------------------------------------------------------
# With CONVERGE_NO_SKIPS=1 (CI) every collected test must run: a skip at run time, a skip at
# collection (a module-level importorskip) and an import error all fail the run. The one exception
# is a test marked ``needs_docker_engine``: it can only run where a Docker engine exists, and this
# machine class has none; its skip is reported as such, by name, in the summary.
_NO_SKIPS = os.environ.get("CONVERGE_NO_SKIPS") == "1"
_ALLOWED_SKIP_MARK = "needs_docker_engine"
_counts = {"collected": 0, "ran": 0, "allowed_skips": 0, "uncollected": 0}


def _allowed_skip(item: pytest.Item) -> bool:
    return item.get_closest_marker(_ALLOWED_SKIP_MARK) is not None


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module skipped while being collected is a failure under CONVERGE_NO_SKIPS."""
    outcome = yield
    report = outcome.get_result()
    if _NO_SKIPS and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.nodeid or 'a module'} was skipped at collection, but CONVERGE_NO_SKIPS=1 "
            f"requires every test to be collected and run: {report.longrepr}"
        )
    if report.failed or report.skipped:
        _counts["uncollected"] += 1


def pytest_collection_finish(session: pytest.Session) -> None:
    _counts["collected"] = len(session.items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CONVERGE_NO_SKIPS=1 (CI) a skipped test fails: a missing service or tool must not
    pass silently where everything is supposed to be installed."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
        _counts["ran"] += not report.skipped or hasattr(report, "wasxfail")
    if report.skipped and not hasattr(report, "wasxfail") and _allowed_skip(item):
        _counts["allowed_skips"] += 1
        return
    if _NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but CONVERGE_NO_SKIPS=1 requires every test to run: {report.longrepr}"


def pytest_terminal_summary(terminalreporter, exitstatus) -> None:
    """Tests run against tests collected, so a test that vanished shows in CI's output."""
    collected, ran, allowed = _counts["collected"], _counts["ran"], _counts["allowed_skips"]
    line = f"converge: ran {ran} of {collected} collected tests"
    if allowed:
        line += f" ({allowed} skipped: marked {_ALLOWED_SKIP_MARK}, no Docker engine here)"
    if _counts["uncollected"]:
        line += f"; {_counts['uncollected']} module(s) not collected (skipped or import error)"
    terminalreporter.write_line(line, bold=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    """No process outlives the session, even if a fixture teardown did not run; and under
    CONVERGE_NO_SKIPS every collected test (bar the allowed skip) must have run."""
    for service in reversed(_started):
        service.stop()
    missing = _counts["collected"] - _counts["ran"] - _counts["allowed_skips"]
    if _NO_SKIPS and missing > 0 and session.exitstatus == 0 and not session.shouldstop:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
