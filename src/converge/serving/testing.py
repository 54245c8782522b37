"""Helpers for tests and benchmarks of the functions: real servers, registered corpus models.

Servers are real: :class:`FunctionProcess` runs a functions-framework target in a subprocess (the
same command a Knative container runs), :class:`InProcessServer` runs any ASGI app under uvicorn
on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from converge.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """``CONVERGE_*`` variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for field, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list | dict):  # pydantic-settings reads complex values as JSON
            value = json.dumps(value)
        env[f"CONVERGE_{field.upper()}"] = str(value)
    return env


def read_rows(csv_path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a corpus input file: numbers as floats, empty cells as missing."""
    rows: list[dict[str, Any]] = []
    with open(csv_path, newline="") as handle:
        for i, raw in enumerate(csv.DictReader(handle)):
            if limit is not None and i >= limit:
                break
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if value == "" or value is None:
                    row[key] = None
                    continue
                try:
                    row[key] = float(value)
                except ValueError:
                    row[key] = value
            rows.append(row)
    return rows


def trainer_predictions(mojo: bytes, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a trainer stores as the validation sample's predictions (``predict`` + one column per
    class), from genmodel run directly: an answer independent of converge's scorer.

    :func:`read_rows` types cells as JSON would; a categorical level that looks like a number
    ("2") reaches genmodel as the text it was in the file, as H2O's parser read it."""
    from converge.reference import GenmodelReference

    reference = GenmodelReference(mojo)

    def as_in_file(column: str, value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and reference.is_categorical(column):
            return str(int(value))
        return value

    return reference.predict([{k: as_in_file(k, v) for k, v in row.items()} for row in rows])


async def register_model(
    settings: Settings,
    pool: Any,
    name: str,
    mojo: bytes,
    rows: list[dict[str, Any]],
    *,
    predictions: list[dict[str, Any]] | None = None,
    promote: bool = False,
) -> Any:
    """Upload ``mojo`` and register it as the next version of ``name`` with a validation sample."""
    from converge.artifacts import ArtifactStore, model_key
    from converge.registry import Registry

    registry = Registry(pool)
    store = ArtifactStore(settings)
    versions = await registry.list_versions(name)
    version = (versions[0].version + 1) if versions else 1
    if predictions is None:
        predictions = await asyncio.to_thread(trainer_predictions, mojo, rows)
    artifact = await asyncio.to_thread(store.put, model_key(name, version), mojo)
    mv = await registry.register(
        name,
        artifact_uri=artifact.uri,
        sha256=artifact.sha256,
        metrics={},
        lineage={"source": "test corpus"},
        validation_sample={"rows": rows, "predictions": predictions},
    )
    if promote:
        mv = await registry.promote(name, mv.version)
    return mv


class FunctionProcess:
    """A function target served as the image serves it, in its own process group.

    ``wrapper``: ``None`` for the image's default, or one of ``serve_function.WRAPPERS``
    (``"functions-framework"`` serves it through functions-framework's aio ASGI app).
    """

    def __init__(
        self,
        target: str,
        source: Path,
        settings: Settings,
        port: int,
        log_path: Path,
        *,
        wrapper: str | None = None,
    ) -> None:
        self.wrapper = wrapper
        self.target = target
        self.source = source
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = {**os.environ, **settings_env(settings), "WORKERS": "1"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> FunctionProcess:
        # The image's command (serve_function), on loopback.
        argv = [
            sys.executable, "-m", "converge.serving.serve_function", "--target", self.target,
            "--source", str(self.source), "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        if self.wrapper is not None:
            argv += ["--wrapper", self.wrapper]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target} exited: {self.log_path.read_text()[-2000:]}")
            if self._listening():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.target} did not come up: {self.log_path.read_text()[-2000:]}")

    def _listening(self) -> bool:
        """HTTP targets answer /healthz; the gRPC target is up once its port accepts."""
        if self.target.endswith("-grpc"):
            with socket.socket() as probe:
                probe.settimeout(1.0)
                return probe.connect_ex(("127.0.0.1", self.port)) == 0
        try:
            return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class InProcessServer:
    """uvicorn serving ``app`` on the running event loop."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> InProcessServer:
        self.task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


async def wait_until(check: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll an async ``check`` until it returns something truthy (or time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


async def migrate(settings: Settings) -> None:
    """Bring the schema to head (idempotent)."""
    from converge import migrations

    await asyncio.to_thread(migrations.upgrade, settings)
