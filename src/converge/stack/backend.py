"""Which backend runs the stack: local processes, or containers when a Docker engine answers."""

from __future__ import annotations

import shutil
import subprocess
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


def choose_backend(wanted: str) -> Backend:
    """Resolve ``settings.stack_backend``; ``auto`` picks containers only if Docker answers."""
    wanted = (wanted or "auto").strip().lower()
    if wanted not in CHOICES:
        raise ValueError(f"stack_backend must be one of {', '.join(CHOICES)}, got {wanted!r}")
    if wanted == "auto":
        return "testcontainers" if docker_available() else "local"
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
