"""Scenario A: walk-forward training with no leakage on any split, splits trained in parallel.

A synthetic data set with a known time signal goes through the feature store; the real Mage
pipeline fans six monthly splits out as dynamic blocks onto the real local H2O at once; the
published MOJO is scored by converge's own reader, and the reload function, receiving the
pipeline's ``model.published`` event, validates and promotes it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from converge.checkout import REPO
from converge.contracts import FeatureVector
from converge.settings import Settings
from converge.training import runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 212  # 2025-01-01 .. 2025-07-31: seven months, six monthly test periods after January
ENTITIES = 20
GBM = json.dumps({"ntrees": 10, "max_depth": 3, "min_rows": 5})


def signal_vectors(seed: int = 11) -> list[FeatureVector]:
    """Demand = weekend lift + price effect + a yearly wave + a trend + noise (sd 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(DAYS):
        when = START + timedelta(days=d, hours=9)
        wave = 4 * np.sin(2 * np.pi * d / 365)
        for e in range(ENTITIES):
            price = float(rng.uniform(1, 10))
            promo = int(rng.random() < 0.2)
            demand = 30 + 8 * (when.weekday() >= 5) - 2 * price + 5 * promo + wave + 0.02 * d
            out.append(
                FeatureVector(
                    entity_id=f"shop-{e:02d}",
                    event_time=when,
                    features={
                        "price": round(price, 2),
                        "promo": promo,
                        "weekday": when.weekday(),
                        "day_of_year": when.timetuple().tm_yday,
                        "shop_size": ["s", "m", "l"][e % 3],
                        "demand": round(float(demand + rng.normal(0, 1)), 3),
                    },
                )
            )
    return out


def settings_env(settings: Settings) -> dict[str, str]:
    env = {}
    for name, value in settings.model_dump().items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if value is not None:
            env[f"CONVERGE_{name.upper()}"] = str(value)
    return env


async def ingest(settings: Settings, vectors: list[FeatureVector]) -> int:
    from converge.db import create_pool
    from converge.features import FeatureStore

    pool = await create_pool(settings)
    try:
        store = FeatureStore(pool)
        written = 0
        for i in range(0, len(vectors), 2000):
            written += await store.upsert(vectors[i : i + 2000])
        return written
    finally:
        await pool.close()


async def registry_call(settings: Settings, method: str, *args: Any) -> Any:
    from converge.db import create_pool
    from converge.registry import Registry

    pool = await create_pool(settings)
    try:
        return await getattr(Registry(pool), method)(*args)
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def reload_function(
    stack_settings: Settings, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
):
    """The real reload function as its own process: the pipeline's broker for this scenario."""
    from converge.serving.testing import FunctionProcess
    from converge.stack.procs import free_port

    logs = tmp_path_factory.mktemp("scenario-a")
    fn = FunctionProcess(
        "reload", REPO / "functions" / "main.py", stack_settings, free_port(), logs / "reload.log"
    )
    fn.start()
    yield fn
    fn.stop()


@pytest.fixture(scope="module")
def trained(stack_settings, h2o_server, s3_server, reload_function, tmp_path_factory):
    from converge import migrations

    migrations.upgrade(stack_settings)
    vectors = signal_vectors()
    assert asyncio.run(ingest(stack_settings, vectors)) == len(vectors)
    name = f"scenario-a-{uuid.uuid4().hex[:6]}"
    env = {**settings_env(stack_settings), "CONVERGE_BROKER_URL": reload_function.url + "/events"}
    mage_dir = tmp_path_factory.mktemp("mage")
    variables = {
        "model_name": name,
        "target": "demand",
        "n_splits": 6,
        "estimator": "gbm",
        "estimator_params": GBM,
        "as_of": datetime.now(UTC).isoformat(),
    }
    progress: list[dict] = []
    outcome = runner.launch(
        "walk_forward", variables, data_dir=mage_dir, parallelism=6, env=env, timeout_s=900,
        on_progress=progress.append,
    )  # fmt: skip
    return {
        "name": name,
        "outcome": outcome,
        "progress": progress,
        "env": env,
        "mage_dir": mage_dir,
        "rows": len(vectors),
    }


def test_six_monthly_splits_train_in_parallel_without_leakage(trained):
    outcome = trained["outcome"]
    assert outcome["status"] == "completed", outcome.get("error")
    splits = outcome["result"]["splits"]
    assert [s["split"] for s in splits] == [
        "2025-02",
        "2025-03",
        "2025-04",
        "2025-05",
        "2025-06",
        "2025-07",
    ]
    for s in splits:
        assert s["max_train_time_ms"] < s["min_test_time_ms"], s["split"]
    sizes = [s["n_train"] for s in splits]
    assert sizes == sorted(sizes) and sizes[0] == 31 * ENTITIES  # January only, then expanding
    assert sum(s["n_test"] for s in splits) == (DAYS - 31) * ENTITIES
    # The known signal is learnt: most of the variance of every test month is explained.
    assert all(s["metrics"]["r2"] > 0.6 for s in splits), [s["metrics"] for s in splits]

    children = [b for b in outcome["blocks"] if b["block_uuid"].startswith("train_split:")]
    assert len(children) == 6 and all(b["status"] == "completed" for b in children)
    # The progress stream announced every block run while the run went on.
    assert sorted(e["block"] for e in trained["progress"]) == sorted(b["block_uuid"] for b in outcome["blocks"])
    # Parallel, not one after another: every child started before the first one finished.
    assert max(b["started_s"] for b in children) < min(
        b["started_s"] + b["seconds"] for b in children
    )


def test_a_leaking_split_plan_is_rejected(trained):
    leaky = [
        {
            "name": "2025-06",
            "train_end": "2025-06-01T00:00:00Z",
            "test_start": "2025-06-01T00:00:00Z",
            "test_end": "2025-07-01T00:00:00Z",
        },
        {
            "name": "2025-07-leaky",
            "train_end": "2025-07-20T00:00:00Z",
            "test_start": "2025-07-01T00:00:00Z",
            "test_end": "2025-08-01T00:00:00Z",
        },
    ]
    variables = {
        "model_name": trained["name"] + "-leaky",
        "target": "demand",
        "estimator_params": GBM,
        "split_plan": json.dumps(leaky),
        "as_of": datetime.now(UTC).isoformat(),
    }
    outcome = runner.launch(
        "walk_forward",
        variables,
        data_dir=trained["mage_dir"],
        parallelism=6,
        env=trained["env"],
        timeout_s=600,
    )
    assert outcome["status"] == "failed"
    assert "LeakageError" in outcome["error"] and "2025-07-leaky" in outcome["error"]


def test_published_mojo_scores_with_converge_and_reload_promotes_it(trained, stack_settings):
    from converge.artifacts import ArtifactStore
    from converge.mojo import load_mojo

    outcome = trained["outcome"]
    assert outcome["status"] == "completed", outcome.get("error")
    [pub] = outcome["result"]["published"]
    assert pub["event"]["delivered"], pub["event"]

    mv = asyncio.run(registry_call(stack_settings, "get", trained["name"], pub["version"]))
    assert mv.lineage["row_count"] == trained["rows"]
    assert mv.lineage["converge_version"] and mv.lineage["h2o_version"] == "3.46.0.11"
    assert len(mv.validation_sample["rows"]) == 50

    mojo = ArtifactStore(stack_settings).get(mv.artifact_uri, expected_sha256=mv.sha256)
    model = load_mojo(mojo)
    got = [r["predict"] for r in model.predict_records(mv.validation_sample["rows"])]
    want = [p["predict"] for p in mv.validation_sample["predictions"]]
    assert np.allclose(got, want, rtol=1e-6)
    weekend, weekday = model.predict_records(
        [
            {"price": 5.0, "promo": 0, "weekday": 5, "day_of_year": 200, "shop_size": "m"},
            {"price": 5.0, "promo": 0, "weekday": 2, "day_of_year": 200, "shop_size": "m"},
        ]
    )
    assert weekend["predict"] > weekday["predict"]  # the weekend lift survived the round trip

    # The reload function got `model.published`, re-scored the sample and promoted the version.
    production = asyncio.run(registry_call(stack_settings, "production", trained["name"]))
    assert production is not None and production.version == pub["version"]
