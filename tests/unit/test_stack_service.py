"""The Service life cycle on a tiny real process: reuse across instances, clean stop, no leftovers
after a failed start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from converge.stack import procs
from converge.stack.service import Service, ServiceError

LISTEN = (
    "import socket, sys, time; s = socket.socket(); "
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); print('up', flush=True); time.sleep(120)"
)


class Listener(Service):
    """Listens on its port: ready as soon as the port accepts connections."""

    name = "listener"
    start_timeout = 20.0

    def command(self) -> list[str]:
        return [sys.executable, "-c", LISTEN, str(self.port)]

    def ready(self) -> bool:
        return procs.port_open(self.port)

    def env(self) -> dict[str, str]:
        return {"CONVERGE_LISTENER_URL": f"tcp://{self.host}:{self.port}"}


class NeverReady(Listener):
    name = "never-ready"

    def ready(self) -> bool:
        return False


class Crashes(Listener):
    name = "crashes"

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import sys; print('bad config', flush=True); sys.exit(3)"]


def test_a_second_instance_reuses_the_running_process(tmp_path: Path) -> None:
    first = Listener(tmp_path, preferred_port=procs.free_port()).start()
    try:
        second = Listener(tmp_path).start()  # no port given: the record says where it runs
        assert second.reused and not first.reused
        assert (second.pid, second.port) == (first.pid, first.port)
    finally:
        first.stop()
    assert not first.is_running() and not second.is_running()
    assert not procs.port_open(first.port)


def test_restart_keeps_the_port(tmp_path: Path) -> None:
    service = Listener(tmp_path).start()
    port, pid = service.port, service.pid
    service.stop()
    service.start()
    try:
        assert service.port == port and service.pid != pid and not service.reused
    finally:
        service.stop()


def test_a_fixed_port_that_is_taken_is_an_error(tmp_path: Path) -> None:
    other = Listener(tmp_path / "other").start()
    try:
        with pytest.raises(ServiceError, match="in use"):
            Listener(tmp_path, other.port).start()
    finally:
        other.stop()


def test_a_service_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    service = NeverReady(tmp_path)
    with pytest.raises(ServiceError, match="not ready"):
        service.start(timeout=1)
    assert service.pid is None
    assert not procs.port_open(service.port)


def test_a_crash_at_start_reports_the_log(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="exited during start-up.*bad config"):
        Crashes(tmp_path).start()
