"""The README's first command, end to end: `converge demo --no-serve` on a fresh state directory.

Every step's result is checked from outside the demo: rows in the feature store, the version in
production in the registry, served predictions equal to the scorer's own answers for the same
rows, and the training report rendered by a real headless browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from converge.stack.procs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("demo-state")
    env = {**os.environ, "CONVERGE_STATE_DIR": str(state)}
    # Ports of a stack the developer may have running must not be reused by this one.
    env.update(
        CONVERGE_DATABASE_URL=f"postgresql://converge:converge@127.0.0.1:{free_port()}/converge",
        CONVERGE_DATABASE_DIRECT_URL=f"postgresql://converge:converge@127.0.0.1:{free_port()}/converge",
        CONVERGE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        CONVERGE_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        CONVERGE_H2O_URL=f"http://127.0.0.1:{free_port()}",
        CONVERGE_H2O_HEAP="1g",
    )
    converge = [sys.executable, "-m", "converge.cli"]
    proc = subprocess.run(
        [*converge, "demo", "--no-serve", "--json", "--port", str(free_port()), "--splits", "6"],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    try:
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout)
        stack_env = dict(
            line.split("=", 1) for line in (state / "stack.env").read_text().splitlines() if "=" in line
        )
        yield summary, {**env, **{k: v.strip("'\"") for k, v in stack_env.items()}}
    finally:
        subprocess.run([*converge, "down"], env=env, capture_output=True, timeout=120)


def _settings(env):
    from converge.settings import Settings

    return Settings(**{k.removeprefix("CONVERGE_").lower(): v for k, v in env.items() if k.startswith("CONVERGE_")})


def test_demo_stores_trains_publishes_and_serves(demo_run):
    from converge.artifacts import ArtifactStore
    from converge.db import create_pool
    from converge.features import FeatureStore
    from converge.reference import GenmodelReference
    from converge.registry import Registry

    summary, env = demo_run
    settings = _settings(env)

    async def look():
        pool = await create_pool(settings, min_size=0)
        try:
            count = await FeatureStore(pool).count()
            production = await Registry(pool).production("demo")
            latest = await FeatureStore(pool).latest_many([p["entity_id"] for p in summary["predictions"]])
            return count, production, latest
        finally:
            await pool.close()

    count, production, latest = asyncio.run(look())
    assert summary["rows_sent"] > 10_000
    assert count == summary["rows_sent"] == summary["rows_stored"]
    assert len(summary["splits"]) == 6
    assert all(s["max_train_time_ms"] < s["min_test_time_ms"] for s in summary["splits"])
    assert production is not None and production.version == summary["version"]

    mojo = ArtifactStore(settings).get(production.artifact_uri, expected_sha256=production.sha256)
    served = summary["predictions"]
    reference = GenmodelReference(mojo)

    def as_trained(features: dict) -> dict:
        """JSON booleans as H2O's parser read them in training: levels, or 1/0 numbers."""
        return {
            k: (str(v) if reference.is_categorical(k) else float(v)) if isinstance(v, bool) else v
            for k, v in features.items()
        }

    expected = reference.predict([as_trained(latest[p["entity_id"]].features) for p in served])
    for got, want in zip(served, expected, strict=True):
        assert got["label"] == want["predict"]
        for label, probability in got["probabilities"].items():
            assert probability == pytest.approx(want[reference.columns[label]], rel=0, abs=1e-12)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup installs it)")
def test_training_report_renders_in_a_headless_browser(demo_run, tmp_path):
    from PIL import Image, ImageStat

    summary, _ = demo_run
    report = Path(summary["report"])
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count('src="data:image/png;base64,') >= 3  # metric over time, predicted vs actual, importance
    assert "Walk-forward splits" in dom

    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,1800", f"--screenshot={shot}", report.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 1800)
    assert ImageStat.Stat(image).stddev[0] > 20  # a page with plots, not a blank one
