"""Training against real services: H2O, S3, Postgres behind PgBouncer, and the Mage pipeline.

Pipelines run through ``converge.training.runner`` in the training environment, exactly as
``converge train`` runs them. Faults (leaking or empty splits, one class, H2O or S3 down) must
fail the run with a message naming the cause and leave no registry row behind.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converge.event_signing import SIGNATURE_ATTRIBUTE, verify
from converge.training import runner
from training_support import demand_frame, versions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY_GBM = json.dumps({"ntrees": 8, "max_depth": 3, "min_rows": 5})


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mage")


def run_pipeline(
    env: dict[str, str],
    mage_dir: Path,
    variables: dict[str, Any],
    *,
    pipeline: str = "walk_forward",
    parallelism: int = 4,
) -> dict[str, Any]:
    base = {"estimator_params": TINY_GBM, "validation_rows": 20}
    return runner.launch(
        pipeline,
        {**base, **variables},
        data_dir=mage_dir,
        parallelism=parallelism,
        env=env,
        timeout_s=600,
    )


# -- tests ------------------------------------------------------------------------------------


def test_publish_uploads_registers_and_announces(
    train_env, mage_dir, data_file, stack_settings, sink
):
    from converge.artifacts import ArtifactStore
    from converge.mojo import load_mojo

    sink.received.clear()
    out = run_pipeline(
        train_env,
        mage_dir,
        {"training_file": str(data_file), "n_splits": 3, "model_name": "itest-publish"},
    )
    assert out["status"] == "completed", out.get("error")
    result = out["result"]
    assert [s["split"] for s in result["splits"]] == ["2025-03", "2025-04", "2025-05"]
    for s in result["splits"]:
        assert s["max_train_time_ms"] < s["min_test_time_ms"]
    [pub] = result["published"]
    assert pub["mojo_check"].startswith("ok")

    [mv] = versions(stack_settings, "itest-publish")
    assert (mv.version, mv.stage) == (pub["version"], "staging")  # never promoted by training
    assert mv.lineage["row_count"] == len(demand_frame())
    assert mv.lineage["h2o_version"] == "3.46.0.11"
    assert [s["name"] for s in mv.lineage["split_plan"]] == ["2025-03", "2025-04", "2025-05"]
    assert mv.lineage["parameters"]["estimator"] == "gbm"
    assert mv.metrics["n_splits"] == 3 and "rmse_mean" in mv.metrics
    assert len(mv.validation_sample["rows"]) == 20

    store = ArtifactStore(stack_settings)
    mojo = store.get(mv.artifact_uri, expected_sha256=mv.sha256)
    model = load_mojo(mojo)
    got = model.predict_records(mv.validation_sample["rows"])
    want = [p["predict"] for p in mv.validation_sample["predictions"]]
    assert np.allclose([g["predict"] for g in got], want, rtol=1e-6)
    report = store.get(mv.report_uri).decode()
    assert report.startswith("<!doctype html>") and report.count("data:image/png;base64,") == 3
    assert "http://" not in report and "https://" not in report  # self-contained

    [event] = sink.received
    assert event["headers"]["Content-Type"].startswith("application/cloudevents+json")
    body = json.loads(event["body"])
    assert body["specversion"] == "1.0" and body["type"] == "model.published"
    assert body["data"] == {"name": "itest-publish", "version": mv.version}
    assert body["sha256"] == mv.sha256
    # Signed with the publish key, as the reload function requires.
    verify(
        stack_settings.publish_key.get_secret_value(),
        body[SIGNATURE_ATTRIBUTE],
        event_id=body["id"],
        event_type=body["type"],
        source=body["source"],
        time=body["time"],
        data=body["data"],
        max_age_s=3600,
    )


def test_regional_pipeline_publishes_one_model_per_segment(
    train_env, mage_dir, data_file, stack_settings
):
    out = run_pipeline(
        train_env,
        mage_dir,
        {
            "training_file": str(data_file),
            "n_splits": 2,
            "model_name": "itest-region",
            "segment": "region",
        },
        pipeline="walk_forward_regional",
    )
    assert out["status"] == "completed", out.get("error")
    names = sorted(p["name"] for p in out["result"]["published"])
    assert names == ["itest-region-east", "itest-region-north", "itest-region-south"]
    children = [b for b in out["blocks"] if b["block_uuid"].startswith("train_split:")]
    assert len(children) == 6  # 3 regions x 2 splits, one dynamic child each
    for name in names:
        [mv] = versions(stack_settings, name)
        assert mv.lineage["segment"] == name.rsplit("-", 1)[1]
        assert "region" not in mv.lineage["parameters"]["features"]


def test_leaking_split_plan_is_rejected_before_training(
    train_env, mage_dir, data_file, stack_settings
):
    plan = [
        {
            "name": "honest",
            "train_end": "2025-03-01T00:00:00Z",
            "test_start": "2025-03-01T00:00:00Z",
            "test_end": "2025-04-01T00:00:00Z",
        },
        {
            "name": "peeks-into-april",
            "train_end": "2025-04-15T00:00:00Z",
            "test_start": "2025-04-01T00:00:00Z",
            "test_end": "2025-05-01T00:00:00Z",
        },
    ]
    out = run_pipeline(
        train_env,
        mage_dir,
        {
            "training_file": str(data_file),
            "split_plan": json.dumps(plan),
            "model_name": "itest-leak",
        },
    )
    assert out["status"] == "failed"
    assert "LeakageError" in out["error"] and "peeks-into-april" in out["error"]
    assert "plan_splits" in out["error"]
    assert not any(b["block_uuid"].startswith("train_split:") for b in out["blocks"])
    assert versions(stack_settings, "itest-leak") == []


def test_empty_split_fails_with_its_name(train_env, mage_dir, data_file, stack_settings):
    plan = [
        {
            "name": "2026-01",
            "train_end": "2026-01-01T00:00:00Z",
            "test_start": "2026-01-01T00:00:00Z",
            "test_end": "2026-02-01T00:00:00Z",
        }
    ]
    out = run_pipeline(
        train_env,
        mage_dir,
        {
            "training_file": str(data_file),
            "split_plan": json.dumps(plan),
            "model_name": "itest-empty",
        },
    )
    assert out["status"] == "failed"
    assert "EmptySplitError" in out["error"] and "2026-01" in out["error"]
    assert versions(stack_settings, "itest-empty") == []


def test_single_class_split_fails_with_its_name(train_env, mage_dir, tmp_path, stack_settings):
    frame = demand_frame(days=120)
    frame["busy"] = np.where(
        frame["event_time"] < datetime(2025, 3, 1, tzinfo=UTC),
        "no",
        np.where(frame["demand"] > frame["demand"].median(), "yes", "no"),
    )
    path = tmp_path / "one-class.parquet"
    frame.drop(columns=["demand"]).to_parquet(path)
    out = run_pipeline(
        train_env,
        mage_dir,
        {
            "training_file": str(path),
            "target": "busy",
            "n_splits": 2,
            "model_name": "itest-oneclass",
        },
    )
    assert out["status"] == "failed"
    assert "SingleClassError" in out["error"] and "2025-03" in out["error"]
    assert versions(stack_settings, "itest-oneclass") == []


def test_h2o_unreachable_is_named(train_env, mage_dir, data_file, stack_settings):
    from converge.stack.procs import free_port

    env = {**train_env, "CONVERGE_H2O_URL": f"http://127.0.0.1:{free_port()}"}
    out = run_pipeline(
        env, mage_dir, {"training_file": str(data_file), "n_splits": 2, "model_name": "itest-noh2o"}
    )
    assert out["status"] == "failed"
    assert "H2OUnavailable" in out["error"] and "unreachable" in out["error"]
    assert versions(stack_settings, "itest-noh2o") == []


def test_s3_down_at_upload_registers_nothing(
    train_env, mage_dir, data_file, stack_settings, s3_server
):
    s3_server.stop()
    try:
        out = run_pipeline(
            train_env,
            mage_dir,
            {"training_file": str(data_file), "n_splits": 2, "model_name": "itest-nos3"},
        )
    finally:
        s3_server.start()
    assert out["status"] == "failed"
    assert "publish_model" in out["error"] and "StorageUnavailable" in out["error"]
    assert versions(stack_settings, "itest-nos3") == []


def _h2o_job_running(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/3/Jobs", timeout=2) as resp:
            jobs = json.load(resp)["jobs"]
    except OSError:
        return False
    return any(
        j["status"] == "RUNNING" and "Model" in (j.get("dest", {}).get("type") or "") for j in jobs
    )


def _start_a_long_training(
    env: dict[str, str], mage_dir: Path, data_file: Path, name: str, h2o_url: str
) -> tuple[dict[str, Any], threading.Thread]:
    """A run in a thread that H2O is busy with for minutes; returns once its job is on H2O, with
    the dict the run's outcome lands in and the thread to join."""
    big = json.dumps({"ntrees": 3000, "max_depth": 10, "min_rows": 1, "score_tree_interval": 0})
    outcome: dict[str, Any] = {}
    params = {"training_file": str(data_file), "n_splits": 2, "model_name": name, "estimator_params": big}
    worker = threading.Thread(target=lambda: outcome.update(run_pipeline(env, mage_dir, params)))
    worker.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not _h2o_job_running(h2o_url):
        time.sleep(0.2)
    assert _h2o_job_running(h2o_url), "no training job ever started on H2O"
    return outcome, worker


def test_h2o_dying_mid_job_fails_the_run_and_registers_nothing(
    train_env, mage_dir, data_file, stack_settings, h2o_server
):
    outcome, worker = _start_a_long_training(train_env, mage_dir, data_file, "itest-h2odies", h2o_server.url)
    h2o_server.stop()
    try:
        worker.join(timeout=600)
    finally:
        h2o_server.start()
    assert outcome["status"] == "failed"
    assert "H2OUnavailable" in outcome["error"] and "train_split" in outcome["error"]
    assert versions(stack_settings, "itest-h2odies") == []


def test_split_jobs_leave_no_frames_on_the_cluster(stack_settings, h2o_server, data_file):
    """The trainer in this process: after each split, the cluster holds what it held before."""
    import h2o

    from converge.training import dataset, splits, trainer

    frame = dataset.from_file(data_file)
    trainer.connect(h2o_server.url)
    before = set(h2o.ls()["key"])
    cfg = trainer.TrainConfig(
        target="demand", features=("price", "weekday", "region"), params=json.loads(TINY_GBM)
    )
    plan = splits.walk_forward(frame["event_time"].to_numpy(), n_splits=2)
    results = [trainer.train_split(frame, s, cfg, run_id="leakcheck") for s in plan]
    assert [r["label"] for r in results] == ["2025-04", "2025-05"]
    assert set(h2o.ls()["key"]) == before
    glm = trainer.TrainConfig(target="demand", features=("price", "weekday"), estimator="glm")
    assert "rmse" in trainer.train_split(frame, plan[0], glm, run_id="leakcheck")["metrics"]
    assert set(h2o.ls()["key"]) == before
    automl = trainer.TrainConfig(
        target="demand",
        features=("price", "weekday"),
        estimator="automl",
        max_models=1,
        params={"nfolds": 0, "include_algos": ["GBM"]},
    )
    result = trainer.train_split(frame, plan[0], automl, run_id="leakcheck")
    assert result["algo"] == "gbm" and "rmse" in result["metrics"]
    assert set(h2o.ls()["key"]) == before  # AutoML's sessions, leaderboards and event logs too


def test_cli_trains_through_the_pipeline_and_prints_the_splits(train_env, data_file, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, **train_env, "CONVERGE_STATE_DIR": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "converge.cli",
        "train",
        "--file",
        str(data_file),
        "--splits",
        "2",
        "--params",
        TINY_GBM,
        "--no-publish",
    ]
    text = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert text.returncode == 0, text.stderr[-2000:]
    assert (
        "split 2025-04" in text.stdout and "split 2025-05" in text.stdout and "rmse=" in text.stdout
    )
    assert "trained demo (not published)" in text.stdout

    as_json = subprocess.run(
        [*cmd, "--json", "--estimator", "drf"],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
    )
    summary = json.loads(as_json.stdout)
    assert summary["status"] == "completed"
    assert [s["split"] for s in summary["result"]["splits"]] == ["2025-04", "2025-05"]

    bad = subprocess.run(
        [*cmd, "--estimator", "svm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert bad.returncode == 1 and "estimator must be one of" in bad.stderr


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.parquet"
    demand_frame(entities=4, days=75).to_parquet(path)
    return path


def test_every_estimator_trains_through_the_cli_with_its_own_defaults(
    train_env, small_file, tmp_path, stack_settings
):
    """No --params: each estimator starts from its own defaults (GBM's ntrees once broke AutoML).

    The six runs go at once, as six users would start them; each has its own model name.
    """
    import subprocess
    import sys

    from converge.training.trainer import DEFAULT_PARAMS, ESTIMATORS

    env = {**os.environ, **train_env, "CONVERGE_STATE_DIR": str(tmp_path)}
    runs = {}
    for estimator in ESTIMATORS:
        cmd = [
            sys.executable, "-m", "converge.cli", "train", "--file", str(small_file),
            "--splits", "1", "--estimator", estimator, "--max-models", "1",
            "--model", f"itest-defaults-{estimator}", "--parallelism", "1", "--json",
        ]  # fmt: skip
        runs[estimator] = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    outputs = {e: p.communicate(timeout=900) for e, p in runs.items()}
    for estimator, (stdout, stderr) in outputs.items():
        assert runs[estimator].returncode == 0, (estimator, stdout[-1500:], stderr[-1500:])
        result = json.loads(stdout)["result"]
        [split] = result["splits"]
        assert split["split"] == "2025-03" and "rmse" in split["metrics"], estimator
        [pub] = result["published"]
        assert pub["mojo_check"].startswith("ok"), (estimator, pub["mojo_check"])
        [mv] = versions(stack_settings, f"itest-defaults-{estimator}")
        assert mv.lineage["parameters"]["estimator"] == estimator
        assert mv.lineage["parameters"]["params"] == DEFAULT_PARAMS[estimator]


def test_maxout_deep_learning_is_published_for_the_native_image(
    train_env, small_file, tmp_path, stack_settings
):
    """Deep Learning with Maxout units, once scored by genmodel only, now passes the native MOJO
    check against H2O's own predictions and is published for the default image."""
    import subprocess
    import sys

    params = json.dumps({"hidden": [8], "epochs": 5, "reproducible": True, "activation": "Maxout"})
    env = {**os.environ, **train_env, "CONVERGE_STATE_DIR": str(tmp_path),
           "CONVERGE_SERVING_SCORER": "native"}
    cmd = [sys.executable, "-m", "converge.cli", "train", "--file", str(small_file),
           "--splits", "1", "--estimator", "deeplearning", "--params", params,
           "--model", "itest-maxout", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    [pub] = json.loads(done.stdout)["result"]["published"]
    assert pub["mojo_check"].startswith("ok:"), pub["mojo_check"]
    [mv] = versions(stack_settings, "itest-maxout")
    assert mv.lineage["parameters"]["params"]["activation"] == "Maxout"


@pytest.mark.parametrize("serving_scorer", ["native", "genmodel"])
def test_the_mojo_check_refuses_what_the_serving_image_cannot_score(serving_scorer):
    """An H2O GAM with standardized thin plate splines: genmodel 3.46.0.11 loads it and then
    fails on every row (its PredictCsv run is recorded in the corpus). Neither serving image can
    score it, and the check says why instead of publishing it."""
    import csv

    from converge.checkout import CONFORMANCE
    from converge.training.publish import PublishError, mojo_check

    case = CONFORMANCE / "gam_gaussian_tp_one"
    assert "genmodel_fails" in json.loads((case / "case.json").read_text())
    with open(case / "input.csv", newline="", encoding="utf-8") as f:
        rows = [{k: (float(v) if k.startswith("x") else v) if v else None for k, v in r.items()}
                for r in list(csv.DictReader(f))[:5]]
    with pytest.raises(PublishError) as refused:
        mojo_check((case / "model.zip").read_bytes(), rows, [{}] * len(rows), serving_scorer)
    message = str(refused.value)
    if serving_scorer == "native":
        assert "cannot score this model" in message and "standardize=True" in message
    else:
        assert "genmodel cannot score this model" in message


def test_encoded_categoricals_are_published_for_the_native_image(
    train_env, small_file, tmp_path, stack_settings
):
    """GBMs trained on Eigen and on EnumLimited categoricals score natively: published for a
    native serving image after the native scorer answered the sample as H2O's own predict did."""
    import subprocess
    import sys

    env = {**os.environ, **train_env, "CONVERGE_STATE_DIR": str(tmp_path),
           "CONVERGE_SERVING_SCORER": "native"}
    runs = {}
    for encoding in ("eigen", "enum_limited"):
        params = json.dumps({**json.loads(TINY_GBM), "categorical_encoding": encoding})
        cmd = [sys.executable, "-m", "converge.cli", "train", "--file", str(small_file),
               "--splits", "1", "--params", params, "--model", f"itest-encoded-{encoding}",
               "--json"]
        runs[encoding] = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                        timeout=900, check=False)
    for encoding, run in runs.items():
        assert run.returncode == 0, (encoding, run.stderr[-2000:])
        [pub] = json.loads(run.stdout)["result"]["published"]
        assert pub["mojo_check"].startswith("ok: "), (encoding, pub["mojo_check"])
        [mv] = versions(stack_settings, f"itest-encoded-{encoding}")
        assert mv.lineage["parameters"]["params"]["categorical_encoding"] == encoding


# -- H2O killed or frozen mid-job, on a node of its own -------------------------------------------


@pytest.fixture(scope="module")
def private_h2o(tmp_path_factory: pytest.TempPathFactory):
    from converge.stack.h2o import H2O
    from converge.stack.procs import free_port

    node = H2O(tmp_path_factory.mktemp("h2o-private"), free_port(pair=True), heap="1g")
    node.start()
    yield node
    node.stop()


def _signal_tree(pid: int, sig: int) -> None:
    """``sig`` to the process and every descendant, as to a crashed or hung container."""
    import psutil

    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        proc.send_signal(sig)


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_h2o_killed_or_frozen_mid_job_fails_the_run_and_registers_nothing(
    fault, train_env, mage_dir, data_file, stack_settings, sink, private_h2o
):
    import signal

    env = {**train_env, "CONVERGE_H2O_URL": private_h2o.url, "CONVERGE_H2O_REQUEST_TIMEOUT_S": "5"}
    name = f"itest-h2o-{fault}"
    events_before = len(sink.received)
    outcome, worker = _start_a_long_training(env, mage_dir, data_file, name, private_h2o.url)
    pid = private_h2o.pid
    _signal_tree(pid, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
    try:
        worker.join(timeout=600)
    finally:
        if fault == "kill":
            private_h2o.stop()
            private_h2o.start()
        else:
            _signal_tree(pid, signal.SIGCONT)
    assert outcome["status"] == "failed"
    assert "H2OUnavailable" in outcome["error"] and "H2O stopped answering" in outcome["error"]
    assert versions(stack_settings, name) == []
    assert len(sink.received) == events_before, "a failed run announced a model"
    # The node back (restarted or thawed), a tiny run on it publishes.
    again = run_pipeline(
        env, mage_dir, {"training_file": str(data_file), "n_splits": 2, "model_name": name}
    )
    assert again["status"] == "completed", again.get("error")
    assert len(versions(stack_settings, name)) == 1
