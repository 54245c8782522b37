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
            [docker, "info"], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
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
