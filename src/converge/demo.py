"""The whole converge loop on one machine, step by step, for ``converge demo``.

Every step uses the real path a cluster would: features go to the ingest function as
``features.ingest`` CloudEvents, training runs the Mage pipeline against H2O, the pipeline's
``model.published`` event reaches the reload function, and predictions come from the predict
function. Each step's result is checked before the next one starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from converge.contracts import FeatureVector
from converge.datasets import BINARY_TARGET, NUMERIC_TARGET, read_table, synthetic_demand
from converge.errors import ConvergeError
from converge.settings import Settings

Report = Callable[[str], None]


class DemoError(ConvergeError):
    """A demo step failed; the message says which and what to do next."""


@dataclass
class DemoOptions:
    data: Path | None = None
    time_column: str = "event_time"
    entity_column: str = "entity_id"
    target: str = BINARY_TARGET
    exclude: tuple[str, ...] = (NUMERIC_TARGET,)
    entities: int = 60
    days: int = 240
    model: str = "demo"
    estimator: str = "gbm"
    splits: int = 6
    port: int = 8080
    batch_rows: int = 2000


@dataclass
class DemoResult:
    rows_sent: int = 0
    rows_stored: int = 0
    version: int | None = None
    splits: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    admin_token: str = ""


def load_vectors(options: DemoOptions) -> list[FeatureVector]:
    """The user's file, or the generated demand data set."""
    if options.data is not None:
        return list(
            read_table(options.data, time_column=options.time_column, entity_column=options.entity_column)
        )
    return synthetic_demand(entities=options.entities, days=options.days)


def start_stack(report: Report) -> dict[str, str]:
    """``converge up`` with H2O; returns the variables every later process needs."""
    from converge.stack.stack import Stack

    stack = Stack(Settings())
    started = stack.up(h2o=True)
    for service in started:
        info = service.describe()
        report(f"  {info['name']:<10} {info['url']}" + ("  (already running)" if service.reused else ""))
    return stack.env(started)


class Gateway:
    """``converge serve`` as a child process: predict, ingest, reload and the admin API on one port."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._env = env
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        argv = [sys.executable, "-m", "converge.cli", "serve", "--port", str(self._port)]
        self._proc = subprocess.Popen(
            argv, env={**os.environ, **self._env}, stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DemoError(f"the gateway exited at start; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise DemoError(f"the gateway did not answer on {self.url}; see {self.log_path}")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)

    def wait(self) -> None:
        if self._proc:
            self._proc.wait()


def train(
    options: DemoOptions, env: dict[str, str], on_progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """The Mage walk-forward pipeline, headless, in the training environment."""
    from converge.training import runner

    variables = {
        "model_name": options.model,
        "target": options.target,
        "exclude": list(options.exclude),
        "estimator": options.estimator,
        "n_splits": options.splits,
        "period": "month",
        "publish": True,
        "estimator_params": orjson.dumps({"ntrees": 30, "max_depth": 5}).decode(),
    }
    outcome = runner.launch("walk_forward", variables, env=env, on_progress=on_progress)
    if outcome.get("status") != "completed":
        raise DemoError(f"training failed: {outcome.get('error')}")
    return outcome["result"] or {}


def wait_for_version(base_url: str, model: str, version: int, timeout: float = 180.0) -> None:
    """Until predict serves ``version`` (reload verified and promoted it, the replica swapped)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/v2/models/{model}", timeout=5)
            if response.status_code == 200 and int(response.json()["versions"][0]) == version:
                return
            last = response.text[:200]
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise DemoError(f"predict did not switch to {model} v{version} in {timeout:.0f} s ({last})")


def check_predictions(
    base_url: str, settings: Settings, model: str, version: int, vectors: Sequence[FeatureVector]
) -> list[dict[str, Any]]:
    """Predict the latest rows of a few entities and compare with the scorer's own answers."""
    from converge.artifacts import ArtifactStore
    from converge.mojo import load_mojo
    from converge.serving.scoring import score_rows

    latest: dict[str, FeatureVector] = {}
    for vector in vectors:
        if vector.entity_id not in latest or vector.event_time > latest[vector.entity_id].event_time:
            latest[vector.entity_id] = vector
    chosen = sorted(latest)[:5]
    response = httpx.post(
        f"{base_url}/predict",
        json={"model": model, "instances": [{"entity_id": e} for e in chosen]},
        timeout=30,
    )
    if response.status_code != 200:
        raise DemoError(f"predict answered {response.status_code}: {response.text[:200]}")
    body = response.json()
    if body["version"] != version:
        raise DemoError(f"predict served v{body['version']}, expected v{version}")

    registry_version = asyncio.run(_registry_version(settings, model, version))
    mojo = ArtifactStore(settings).get(registry_version.artifact_uri, expected_sha256=registry_version.sha256)
    scorer = load_mojo(mojo)
    expected = score_rows(scorer, [dict(latest[e].features) for e in chosen])
    out = []
    for entity, got, want in zip(chosen, body["predictions"], expected, strict=True):
        if str(got["label"]) != str(want["predict"]):
            raise DemoError(f"{entity}: served {got['label']!r}, scorer says {want['predict']!r}")
        out.append({"entity_id": entity, **got})
    return out


async def _registry_version(settings: Settings, model: str, version: int) -> Any:
    from converge.db import create_pool
    from converge.registry import Registry

    pool = await create_pool(settings, min_size=0)
    try:
        return await Registry(pool).get(model, version)
    finally:
        await pool.close()


def fetch_report(
    settings: Settings, report_uri: str | None, target_dir: Path, name: str, version: int
) -> Path | None:
    """Download the training report next to the state directory so a browser can open it."""
    if not report_uri:
        return None
    from converge.artifacts import ArtifactStore

    html = ArtifactStore(settings).get(report_uri)
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}-v{version}-{Path(report_uri).name}"
    path.write_bytes(html)
    return path
