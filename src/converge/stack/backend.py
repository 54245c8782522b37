"""Which backend runs the stack: local processes, or containers (testcontainers).

Containers only when asked for (``testcontainers``) or, with ``auto``, when both the
testcontainers package (the dev extra) and a Docker engine are present; asked for and not
possible, the error says which of the two is missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from typing import Literal

Backend = Literal["local", "testcontainers"]
CHOICES = ("auto", "local", "testcontainers")


def docker_available(timeout: float = 10.0) -> bool:
    """True when ``docker info`` succeeds: a client alone (no engine) is not enough."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run(
            [docker, "info"],
            check=False,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def testcontainers_installed() -> bool:
    return importlib.util.find_spec("testcontainers") is not None


class BackendUnavailable(RuntimeError):
    """The container backend was asked for and cannot run here."""


def checked_choice(wanted: str) -> str:
    """``wanted`` normalised, or a ValueError naming the setting and its choices."""
    wanted = (wanted or "auto").strip().lower()
    if wanted not in CHOICES:
        raise ValueError(f"stack_backend must be one of {', '.join(CHOICES)}, got {wanted!r}")
    return wanted


def choose_backend(wanted: str) -> Backend:
    """Resolve ``settings.stack_backend``; ``auto`` picks containers only when the testcontainers
    package is installed and a Docker engine answers."""
    return decide_backend(wanted, testcontainers_installed, docker_available)


def decide_backend(
    wanted: str, installed: Callable[[], bool], engine: Callable[[], bool]
) -> Backend:
    """The rule itself, given how to tell whether the package and an engine are present."""
    wanted = checked_choice(wanted)
    if wanted == "auto":
        return "testcontainers" if installed() and engine() else "local"
    if wanted == "testcontainers":
        if not installed():
            raise BackendUnavailable(
                "stack_backend=testcontainers needs the testcontainers package: "
                "pip install 'converge[dev]' (pinned in requirements/serve.lock), or use local"
            )
        if not engine():
            raise BackendUnavailable(
                "stack_backend=testcontainers needs a Docker engine, and `docker info` does not "
                "answer here; start one, or use local"
            )
    return wanted  # type: ignore[return-value]


def service_classes(backend: Backend) -> dict[str, type]:
    """The class of each service for ``backend`` (H2O and PgBouncer are always local processes)."""
    from converge.stack.h2o import H2O
    from converge.stack.pgbouncer import PgBouncer
    from converge.stack.postgres import Postgres
    from converge.stack.redis import Redis
    from converge.stack.s3 import S3

    classes: dict[str, type] = {
        "postgres": Postgres,
        "pgbouncer": PgBouncer,
        "redis": Redis,
        "s3": S3,
        "h2o": H2O,
    }
    if backend == "testcontainers":
        from converge.stack.containers import PostgresContainer, RedisContainer, S3Container

        classes.update(postgres=PostgresContainer, redis=RedisContainer, s3=S3Container)
    return classes
