"""Training under a real Mage server (webserver and scheduler) on the project's own database.

One executor per run: a run started by a trigger is executed by Mage's scheduler alone, a run
started by ``converge train`` by converge's runner alone, even while a scheduler ticks every
few seconds beside it. Triggers come from the tracked ``triggers.yaml`` files, the UI's API shows the
CLI's runs with their block runs, and nothing any of it does at run time dirties a tracked file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from converge.checkout import REPO
from training_support import PROJECT, EventSink, MageServer, versions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY_GBM = json.dumps({"ntrees": 5, "max_depth": 3, "min_rows": 5})


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory of ``converge mage`` and ``converge train``: one Mage database."""
    return tmp_path_factory.mktemp("mage-state")


def _project_files() -> dict[str, str]:
    """Every file of the project git would see (tracked, or untracked and not ignored): digest."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", str(PROJECT)],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    return {
        name: hashlib.sha256((REPO / name).read_bytes()).hexdigest()
        for name in listed
        if name and (REPO / name).is_file()
    }


@pytest.fixture(scope="module")
def project_before() -> dict[str, str]:
    return _project_files()


@pytest.fixture(scope="module")
def mage_server(
    train_env: dict[str, str], state_dir: Path, project_before: dict[str, str]
) -> Iterator[MageServer]:
    server = MageServer(state_dir, train_env, state_dir / "mage-server.log")
    try:
        server.wait_ready()
        server.sign_in()
        yield server
    finally:
        server.stop()


def _schedules(server: MageServer, pipeline: str) -> dict[str, dict[str, Any]]:
    answer = server.get(f"/api/pipelines/{pipeline}/pipeline_schedules")
    return {s["name"]: s for s in answer["pipeline_schedules"]}


def _wait_for_run(server: MageServer, run_id: int, timeout_s: float = 480) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = server.get(f"/api/pipeline_runs/{run_id}")["pipeline_run"]
        if run["status"] in ("completed", "failed", "cancelled"):
            return run
        time.sleep(1)
    raise TimeoutError(f"pipeline run {run_id} still {run['status']} after {timeout_s} s")


def _block_runs(server: MageServer, run_id: int) -> list[dict[str, Any]]:
    return server.get(f"/api/block_runs?pipeline_run_id={run_id}")["block_runs"]


def _events_for(sink: EventSink, name: str) -> list[dict[str, Any]]:
    bodies = [json.loads(e["body"]) for e in sink.received]
    return [b for b in bodies if b["data"]["name"] == name]


def test_triggers_in_code_are_loaded_by_mages_scheduler(mage_server):
    deadline = time.monotonic() + 60  # the scheduler syncs triggers.yaml on its next tick
    while time.monotonic() < deadline and len(_schedules(mage_server, "walk_forward")) < 2:
        time.sleep(1)
    walk = _schedules(mage_server, "walk_forward")
    assert walk["retrain-on-schedule"]["schedule_type"] == "time"
    assert walk["retrain-on-schedule"]["schedule_interval"] == "@daily"
    assert walk["retrain-on-schedule"]["variables"] == {"publish": True}
    assert walk["retrain-on-request"]["schedule_type"] == "api"
    assert walk["retrain-on-request"]["status"] == "active"
    assert walk["retrain-on-request"]["variables"] == {"publish": True}
    regional = _schedules(mage_server, "walk_forward_regional")
    assert regional["regional-retrain-on-schedule"]["schedule_interval"] == "0 3 * * *"
    assert regional["regional-retrain-on-schedule"]["variables"] == {"segment": "region", "publish": True}
    # The headless runner's own trigger belongs to no pipeline, so no pipeline lists it.
    assert not [n for n in walk if n.startswith("converge train")]


def test_api_trigger_run_is_executed_by_mages_scheduler_and_publishes(
    mage_server, data_file, stack_settings, sink
):
    trigger = _schedules(mage_server, "walk_forward")["retrain-on-request"]
    variables = {
        "training_file": str(data_file),
        "n_splits": 2,
        "estimator_params": TINY_GBM,
        "model_name": "itest-mage-api",
        "validation_rows": 10,
    }
    answer = mage_server.post(
        f"/api/pipeline_schedules/{trigger['id']}/pipeline_runs/{trigger['token']}",
        {"pipeline_run": {"variables": variables}},
    )
    run_id = answer["pipeline_run"]["id"]
    run = _wait_for_run(mage_server, run_id)
    blocks = _block_runs(mage_server, run_id)
    assert run["status"] == "completed", [(b["block_uuid"], b["status"]) for b in blocks]
    children = [b for b in blocks if b["block_uuid"].startswith("train_split:")]
    assert len(children) == 2 and all(b["status"] == "completed" for b in blocks)

    [mv] = versions(stack_settings, "itest-mage-api")  # the trigger's `publish: true`
    assert mv.lineage["run_id"] == f"walk_forward-{run_id}"  # Mage's own run, as the UI shows it
    assert [s["name"] for s in mv.lineage["split_plan"]] == ["2025-04", "2025-05"]
    [event] = _events_for(sink, "itest-mage-api")
    assert event["data"]["version"] == mv.version


def test_cli_run_beside_a_running_scheduler_is_executed_once(
    mage_server, train_env, data_file, state_dir, stack_settings, sink
):
    log_before = len(mage_server.log())
    env = {**os.environ, **train_env, "CONVERGE_STATE_DIR": str(state_dir)}
    cmd = [
        sys.executable, "-m", "converge.cli", "train", "--file", str(data_file), "--splits", "2",
        "--params", TINY_GBM, "--model", "itest-beside", "--json",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    run_id = summary["pipeline_run_id"]

    # The scheduler ticked all along (and at least twice, waiting after a quick run) and never
    # counted the CLI's run among its active runs.
    def ticks() -> list[str]:
        return re.findall(r"Active pipeline runs: \[([\d, ]*)\]", mage_server.log()[log_before:])

    deadline = time.monotonic() + 60
    while len(ticks()) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    seen = ticks()
    assert len(seen) >= 2, "the scheduler did not tick while the CLI ran"
    assert all(str(run_id) not in re.split(r",\s*", t) for t in seen)

    # Each block ran once: one registry version, one announcement.
    [mv] = versions(stack_settings, "itest-beside")
    assert mv.lineage["run_id"] == f"walk_forward-{run_id}"
    assert len(_events_for(sink, "itest-beside")) == 1

    # The UI's API shows the pipelines, the CLI's run and its block runs.
    pipelines = {p["uuid"] for p in mage_server.get("/api/pipelines")["pipelines"]}
    assert {"walk_forward", "walk_forward_regional"} <= pipelines
    runs = mage_server.get("/api/pipeline_runs?pipeline_uuid=walk_forward")["pipeline_runs"]
    [mine] = [r for r in runs if r["id"] == run_id]
    assert mine["status"] == "completed"
    blocks = _block_runs(mage_server, run_id)
    uuids = [b["block_uuid"] for b in blocks]
    assert len(uuids) == len(set(uuids))  # no block run made twice
    assert {b["block_uuid"] for b in summary["blocks"]} <= set(uuids)
    assert {"load_training_set", "plan_splits", "publish_model"} <= set(uuids)
    assert all(b["status"] == "completed" for b in blocks)


def test_runs_leave_the_tracked_project_as_they_found_it(mage_server, project_before):
    """The server, its scheduler's run and the CLI's run (above) wrote nothing git would see."""
    after = _project_files()
    names = after.keys() | project_before.keys()
    assert sorted(n for n in names if after.get(n) != project_before.get(n)) == []
