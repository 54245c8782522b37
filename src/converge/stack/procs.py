"""Process and port primitives for the local stack: free ports, liveness by pid, clean termination.

A pid file alone lies after a reboot or pid reuse, so a process is identified by its pid *and* its
start time (``/proc/<pid>/stat`` field 22), recorded when it was launched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

LOCALHOST = "127.0.0.1"


def port_open(port: int, host: str = LOCALHOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port: int, host: str = LOCALHOST) -> bool:
    """True when ``host:port`` can be bound now (nothing listens, nothing holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR; without it here, TIME_WAIT leftovers of a stopped server would
        # make its own port look taken and a restart on the same port would fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return not port_open(port, host)


def free_port(host: str = LOCALHOST, *, pair: bool = False, avoid: set[int] | None = None) -> int:
    """A port the kernel reports free; with ``pair`` also ``port + 1`` (H2O uses both)."""
    avoid = avoid or set()
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port in avoid or (pair and (port + 1 in avoid or port + 1 > 65535)):
            continue
        if pair and not port_free(port + 1, host):
            continue
        return port
    raise RuntimeError("no free TCP port found on " + host)


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        _reap(pid)
        return None
    return int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """True when ``pid`` runs and is the same process that was started (not a reused pid)."""
    current = start_time(pid)
    return current is not None and (started is None or current == started)


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(
    pid: int, started: int | None, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Send ``sig`` to ``pid``, wait, then SIGKILL its whole process group; wait until it is gone."""
    if not alive(pid, started):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if _wait_gone(pid, started, timeout):
        _kill_group(pid)
        return
    _kill_group(pid)
    if not _wait_gone(pid, started, 10.0):
        raise RuntimeError(f"process {pid} survived SIGKILL")


def _kill_group(pid: int) -> None:
    """Children (Postgres backends, JVM helpers) share the leader's session: kill them all."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid, started):
            return True
        time.sleep(0.05)
    return False
