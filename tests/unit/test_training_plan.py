"""The pure parts of the training pipeline: variables, the dynamic block's output, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from converge.training import runner, steps
from converge.training.splits import LeakageError, to_ms


def _frame(days: int = 120) -> pd.DataFrame:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        {
            "entity_id": f"e{e}",
            "event_time": to_ms(start + timedelta(days=d)),
            "x": float(d),
            "region": "north" if e % 2 else "South West",
            "demand": float(d + e),
        }
        for d in range(days)
        for e in range(4)
    ]
    return pd.DataFrame(rows)


def test_dynamic_block_returns_items_and_metadata():
    items, metadata = steps.plan(_frame(), {"n_splits": "3"})
    assert [i["split"]["name"] for i in items] == ["2025-02", "2025-03", "2025-04"]
    assert [m["block_uuid"] for m in metadata] == [
        "split_2025-02",
        "split_2025-03",
        "split_2025-04",
    ]
    json.dumps(items)  # Mage stores the items between processes


def test_segment_plan_fans_out_per_value():
    items, metadata = steps.plan(_frame(), {"n_splits": 2, "segment": "region"})
    assert len(items) == 4
    assert {m["block_uuid"] for m in metadata} == {
        "north_2025-03",
        "north_2025-04",
        "south-west_2025-03",
        "south-west_2025-04",
    }
    assert {i["segment"] for i in items} == {"north", "South West"}


def test_explicit_leaking_plan_is_refused_by_the_planner():
    plan = [
        {
            "name": "bad",
            "train_end": "2025-03-10T00:00:00Z",
            "test_start": "2025-03-01T00:00:00Z",
            "test_end": "2025-04-01T00:00:00Z",
        }
    ]
    with pytest.raises(LeakageError, match="bad"):
        steps.plan(_frame(), {"split_plan": json.dumps(plan)})


def test_variables_typed_in_the_ui_are_parsed():
    opts = steps.RunOptions.from_kwargs(
        {
            "n_splits": "4",
            "estimator_params": '{"ntrees": 5}',
            "exclude": "a, b",
            "as_of": "2025-05-01",
            "publish": "false",
            "train_periods": "None",
            "segment": "",
        }
    )
    assert opts.n_splits == 4 and opts.estimator_params == {"ntrees": 5}
    assert opts.exclude == ("a", "b") and opts.publish is False and opts.train_periods is None
    assert opts.as_of == datetime(2025, 5, 1, tzinfo=UTC) and opts.segment is None
    cfg = opts.train_config(_frame())
    assert cfg.features == ("x", "region")
    with pytest.raises(ValueError, match="model_name"):
        steps.RunOptions.from_kwargs({"model_name": "../etc"})


def test_error_line_is_found_in_a_block_log():
    log = (
        "noise\nTraceback (most recent call last):\n  File x\n"
        "converge.training.splits.LeakageError: split 'x' leaks: ...\n│ box drawing │\n"
    )
    assert runner.error_from_log(log) == "LeakageError: split 'x' leaks: ..."
    assert runner.error_from_log("all good") is None
    assert runner.error_from_log("converge.errors.InvalidInput: estimator must be one of") == (
        "InvalidInput: estimator must be one of"
    )
    assert (
        runner.error_from_log('INFO:walk_forward/1:{"message": "x"}\nWARNING:traitlets:x') is None
    )


def test_report_is_one_self_contained_page():
    """Rendered in the training environment (.venv-mage), where matplotlib lives."""
    import json
    import subprocess

    from converge.training.runner import training_python

    result = {
        "split": {"name": "2025-02", "test_start_ms": 1},
        "segment": None,
        "label": "2025-02",
        "problem": "regression",
        "primary_metric": "rmse",
        "metrics": {"rmse": 1.5, "r2": 0.9},
        "n_train": 10,
        "n_test": 5,
        "max_train_time_ms": 0,
        "min_test_time_ms": 1,
        "h2o_seconds": 0.1,
        "sample": {"actual": [0.0, 1.0, 2.0, 3.0, 4.0], "predicted": [0.1, 1.1, 2.1, 3.1, 4.1]},
    }
    arguments = {
        "name": "demo",
        "version": 3,
        "results": [result],
        "final": {"metrics": {"rmse": 1.0}, "variable_importance": [{"variable": "x", "importance": 1.0}]},
        "lineage": {"cut_off": "2025-03-01T00:00:00Z", "parameters": {"estimator": "gbm"}},
    }
    code = (
        "import json, sys; from converge.training import report; "
        "sys.stdout.write(report.render(**json.loads(sys.argv[1])))"
    )
    html = subprocess.run(
        [str(training_python()), "-c", code, json.dumps(arguments)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert html.count("data:image/png;base64,") == 3
    assert "<script" not in html and "http" not in html.split("<body>")[1]
    assert "demo v3" in html and "2025-02" in html


def test_rows_without_a_label_are_not_trained_on(tmp_path):
    import pandas as pd

    from converge.training import steps

    path = tmp_path / "sales.csv"
    pd.DataFrame(
        {
            "event_time": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"],
            "entity_id": ["a", "b", "c"],
            "x": [1.0, 2.0, 3.0],
            "label": ["yes", None, "no"],
        }
    ).to_csv(path, index=False)
    frame = steps.load({"training_file": str(path), "target": "label"})
    assert sorted(frame["label"].tolist()) == ["no", "yes"]


def test_a_coroutine_runs_to_the_end_inside_a_running_event_loop():
    """Mage's editor runs blocks inside a running loop, where asyncio.run refuses to start."""
    import asyncio

    from converge.training.loop import run_coroutine

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def block_in_the_editor() -> int:
        with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
            coro = answer()
            try:
                asyncio.run(coro)
            finally:
                coro.close()
        return run_coroutine(answer())

    assert asyncio.run(block_in_the_editor()) == 42
    assert run_coroutine(answer()) == 42


def test_lineage_run_id_is_mages_pipeline_run():
    assert steps.run_id_of({"pipeline_uuid": "walk_forward", "pipeline_run_id": 17}) == "walk_forward-17"
    assert steps.RunOptions.from_kwargs({"pipeline_uuid": "walk_forward", "pipeline_run_id": 3}).run_id == (
        "walk_forward-3"
    )
    assert steps.run_id_of({}).startswith("editor-")  # a block run by hand has no pipeline run
