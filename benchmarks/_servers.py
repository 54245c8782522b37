"""Servers the V2 benchmarks start: the local stack in a temporary directory, and KServe's own
model server hosting a MOJO (benchmarks/kserve_mojo_server.py) as the baseline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from converge.checkout import REPO
from converge.settings import Settings
from converge.stack.procs import free_port



@contextmanager
def local_stack(work: Path, default_model: str) -> Iterator[Settings]:
    """Postgres, Redis and S3 on free ports under ``work``; settings naming every address."""
    from converge.stack.postgres import Postgres
    from converge.stack.redis import Redis
    from converge.stack.s3 import S3

    services = [Postgres(work, free_port(), durable=False), Redis(work, free_port()), S3(work, free_port())]
    env: dict[str, str] = {}
    try:
        for service in services:
            service.start()
            env.update(service.env())
        env["CONVERGE_DATABASE_URL"] = services[0].dsn  # every address explicit
        yield Settings(
            **{k.removeprefix("CONVERGE_").lower(): v for k, v in env.items()},
            default_model=default_model, registry_poll_s=30.0, state_dir=work,
        )  # fmt: skip
    finally:
        for service in reversed(services):
            service.stop()


@contextmanager
def kserve_server(name: str, mojo: Path, log: Path, *, grpc: bool = False) -> Iterator[tuple[int, int | None]]:
    """KServe's model server with the MOJO; yields its HTTP port and (``grpc``) its gRPC port."""
    port, grpc_port = free_port(), (free_port() if grpc else None)
    argv = [sys.executable, str(REPO / "benchmarks" / "kserve_mojo_server.py"), name, str(mojo), str(port)]
    handle = open(log, "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        argv + ([str(grpc_port)] if grpc_port else []), stdout=handle, stderr=handle, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/models/{name}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"KServe's model server did not become ready; see {log}")
            time.sleep(0.3)
        yield port, grpc_port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
