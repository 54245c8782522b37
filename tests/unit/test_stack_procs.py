"""Process primitives: ports that are really free, liveness that survives pid reuse, termination
that escalates to SIGKILL."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from converge.stack import procs


def test_free_port_is_bindable_and_a_listener_makes_it_busy() -> None:
    port = procs.free_port()
    assert procs.port_free(port)
    with socket.socket() as sock:
        sock.bind((procs.LOCALHOST, port))
        sock.listen()
        assert not procs.port_free(port)
        assert procs.port_open(port)
    assert not procs.port_open(port)


def test_free_pair_has_both_ports_free() -> None:
    port = procs.free_port(pair=True)
    assert procs.port_free(port) and procs.port_free(port + 1)


def test_a_recorded_start_time_tells_a_reused_pid_apart() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = procs.start_time(child.pid)
        assert started is not None
        assert procs.alive(child.pid, started)
        assert not procs.alive(child.pid, started + 1)  # same pid, another process
    finally:
        procs.terminate(child.pid, started)
    assert not procs.alive(child.pid, started)
    assert child.poll() is not None  # reaped, not a zombie


def test_terminate_kills_a_process_that_ignores_the_stop_signal() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    child.stdout.readline()  # the handler is installed
    started = procs.start_time(child.pid)
    procs.terminate(child.pid, started, signal.SIGTERM, timeout=0.5)
    # It ignores SIGTERM, so being gone means the SIGKILL escalation worked (and it was reaped).
    assert not procs.alive(child.pid, started)
    assert not Path(f"/proc/{child.pid}").exists()
