"""The common shape of a local service: a real process on 127.0.0.1 with its own state directory.

``start()`` is idempotent: a service whose recorded process still runs and answers is reused, so a
second ``converge up`` (or a fixture in another process) attaches instead of starting a duplicate.
``stop()`` then ``start()`` brings the service back on the same ports, so clients can reconnect.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from converge.stack import procs
from converge.stack.users import RunAs, demoted_user


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped; the message says which and why."""


class PortInUse(ServiceError):
    """A port the caller insisted on is taken (another process got it first)."""


class Service(ABC):
    """One local process. Subclasses give the command line, readiness check and variables."""

    name: ClassVar[str]
    # Extra named ports besides the main one (e.g. SeaweedFS's master/volume/filer ports).
    extra_ports: ClassVar[tuple[str, ...]] = ()
    stop_signal: ClassVar[int] = signal.SIGTERM
    # Postgres and PgBouncer refuse root.
    unprivileged: ClassVar[bool] = False
    start_timeout: ClassVar[float] = 60.0

    def __init__(
        self,
        state_dir: Path | str,
        port: int | None = None,
        *,
        preferred_port: int | None = None,
    ) -> None:
        """``port`` is binding (fail if taken); ``preferred_port`` is tried first, else a free one."""
        self.state_dir = Path(state_dir)
        self.host = procs.LOCALHOST
        self._fixed_port = port
        self._preferred_port = preferred_port
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self.reused = False

    # -- paths and recorded state -------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.state_dir / self.name

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def _record_file(self) -> Path:
        return self.dir / "process.json"

    def _record(self) -> dict[str, Any]:
        try:
            return json.loads(self._record_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    @property
    def port(self) -> int:
        if "main" not in self.ports:
            self._load_ports()
        if "main" in self.ports:
            return self.ports["main"]
        if self._fixed_port is not None:  # known before the first start
            return self._fixed_port
        raise ServiceError(f"{self.name}: no port chosen yet (start it first)")

    def _load_ports(self) -> None:
        recorded = self._record().get("ports") or {}
        if recorded and not self.ports:
            self.ports = {k: int(v) for k, v in recorded.items()}

    @property
    def pid(self) -> int | None:
        record = self._record()
        pid, started = record.get("pid"), record.get("started")
        if pid and procs.alive(pid, started):
            return int(pid)
        return None

    # -- lifecycle ------------------------------------------------------------------------------

    def alive(self) -> bool:
        """True when the recorded process exists (it may not answer yet)."""
        return self.pid is not None

    def is_running(self) -> bool:
        """True when the recorded process is alive and its main port accepts connections."""
        if not self.alive():
            return False
        port = (self._record().get("ports") or {}).get("main")
        return bool(port) and procs.port_open(int(port), self.host)

    def start(self, timeout: float | None = None) -> Service:
        """Start the process and wait until it answers; reuse it when it already runs."""
        self.dir.mkdir(parents=True, exist_ok=True)
        timeout = self.start_timeout if timeout is None else timeout
        if self.is_running():
            self.ports = {}
            self._load_ports()
            self.reused = True
            self.wait_ready(timeout)
            self._after_start()
            return self
        self.reused = False
        self._stop_stale()
        self._choose_ports()
        self._prepare()
        self._launch()
        try:
            self.wait_ready(timeout)
            self._after_start()
        except BaseException:
            self.stop()  # never leave a half-started process behind
            raise
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the process to exit (its stop signal), then kill it; return once it is gone."""
        record = self._record()
        pid, started = record.get("pid"), record.get("started")
        if pid:
            procs.terminate(int(pid), started, self.stop_signal, timeout)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - terminate() already killed it
                self._proc.kill()
            self._proc = None
        if record:
            record.pop("pid", None)
            record.pop("started", None)
            self._write_record(record)
        self._after_stop()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll the service-specific readiness check; fail early if the process died."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(f"{self.name} exited during start-up: {self.log_tail()}")
            try:
                if self.ready():
                    return
            except Exception as exc:  # noqa: BLE001 - readiness probes fail in many ways
                last = exc
            time.sleep(0.2)
        why = f" (last error: {last})" if last else ""
        raise ServiceError(f"{self.name} not ready after {timeout:.0f}s{why}: {self.log_tail()}")

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    # -- what subclasses provide ----------------------------------------------------------------

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the service in the foreground."""

    @abstractmethod
    def ready(self) -> bool:
        """A protocol-level check that the service serves requests."""

    @abstractmethod
    def env(self) -> dict[str, str]:
        """The ``CONVERGE_*`` variables that point a client at this service."""

    def _prepare(self) -> None:
        """One-time set-up before launch (data directories, config files)."""

    def _after_start(self) -> None:
        """Set-up that needs the running service (roles, buckets); must be idempotent."""

    def _after_stop(self) -> None:
        """Clean-up of what the process leaves outside its state directory."""

    def describe(self) -> dict[str, Any]:
        """Name, state and addresses, for ``converge status``."""
        self._load_ports()
        return {
            "name": self.name,
            "running": self.is_running(),
            "pid": self.pid,
            "host": self.host,
            "ports": dict(self.ports),
            "url": self.url if self.ports else None,
            "log": str(self.log_file),
        }

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    # -- internals ------------------------------------------------------------------------------

    def _run_as(self) -> RunAs | None:
        return demoted_user() if self.unprivileged else None

    def _stop_stale(self) -> None:
        """A recorded process that is alive but does not answer is half-dead: end it first."""
        record = self._record()
        pid, started = record.get("pid"), record.get("started")
        if pid and procs.alive(pid, started):
            procs.terminate(int(pid), started, signal.SIGKILL, 5.0)

    def _choose_ports(self) -> None:
        previous = {k: int(v) for k, v in (self._record().get("ports") or {}).items()}
        taken: set[int] = set()
        chosen: dict[str, int] = {}
        for key in ("main", *self.extra_ports):
            if key == "main" and self._fixed_port is not None:
                port = self._fixed_port
                if not self._port_usable(port):
                    raise PortInUse(f"{self.name}: port {port} on {self.host} is already in use")
            else:
                wishes = [previous.get(key)]
                if key == "main":
                    wishes.append(self._preferred_port)
                port = next(
                    (p for p in wishes if p and p not in taken and self._port_usable(p)), None
                ) or procs.free_port(pair=self._needs_pair(key), avoid=taken)
            chosen[key] = port
            # A pair-using port also occupies port + 1; keep neighbours out of each other's way.
            taken |= {port - 1, port, port + 1}
        self.ports = chosen

    def _needs_pair(self, key: str) -> bool:
        """H2O listens on its port and the next one; other services use one port per key."""
        return False

    def _port_usable(self, port: int) -> bool:
        ok = procs.port_free(port, self.host)
        if ok and self._needs_pair("main"):
            ok = procs.port_free(port + 1, self.host)
        return ok

    def _write_record(self, record: dict[str, Any]) -> None:
        tmp = self._record_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, self._record_file)

    def _launch(self) -> None:
        argv = self.command()
        run_as = self._run_as()
        if run_as is not None:
            argv = run_as.prefix(self.dir) + argv
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=self._child_env(),
                start_new_session=True,
            )
        started = None
        for _ in range(50):
            started = procs.start_time(self._proc.pid)
            if started is not None or self._proc.poll() is not None:
                break
            time.sleep(0.01)
        self._write_record(
            {"pid": self._proc.pid, "started": started, "ports": self.ports, "argv": argv}
        )

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Children must not inherit our CONVERGE_* settings or a client's PG* variables.
        for key in list(env):
            if key.startswith(("CONVERGE_", "PG")):
                del env[key]
        env["LC_ALL"] = "C.UTF-8"
        return env
