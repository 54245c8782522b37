"""Blocks run the way Mage's editor runs them: inside a running event loop (the kernel's), asking
Mage to record each block's status. The loader reads the feature store there as it does under the
scheduler, and nothing of the run lands in the tracked project.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from converge.settings import Settings
from converge.training import runner
from converge.checkout import REPO
from training_support import settings_env

pytestmark = [pytest.mark.integration]

TARGET = "editor_demand"  # no other test ingests this column

EDITOR = """
import asyncio, json, sys
from mage_ai.settings.repo import set_repo_path
set_repo_path(sys.argv[1])
from mage_ai.data_preparation.models.pipeline import Pipeline

pipeline = Pipeline.get("walk_forward", repo_path=sys.argv[1])
run_vars = {**pipeline.variables, **json.loads(sys.argv[2])}


async def kernel():
    # The editor's kernel has a running loop; blocks run inside it, statuses written back.
    loaded = pipeline.get_block("load_training_set").execute_sync(
        global_vars=run_vars, update_status=True
    )["output"][0]
    planned = pipeline.get_block("plan_splits").execute_sync(
        global_vars=run_vars, update_status=True
    )["output"]
    return {"rows": len(loaded), "entities": sorted(set(loaded["entity_id"])),
            "splits": [item["split"]["name"] for item in planned[0]]}

print("RESULT " + json.dumps(asyncio.run(kernel())))
"""


async def _ingest(settings: Settings) -> int:
    from converge.contracts import FeatureVector
    from converge.db import create_pool
    from converge.features import FeatureStore

    start = datetime(2025, 1, 1, 12, tzinfo=UTC)
    vectors = [
        FeatureVector(
            entity_id=f"editor-{e}",
            event_time=start + timedelta(days=d),
            features={"x": float(d), TARGET: float(d + e)},
        )
        for d in range(90)
        for e in range(3)
    ]
    pool = await create_pool(settings)
    try:
        return await FeatureStore(pool).upsert(vectors)
    finally:
        await pool.close()


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """A clone of this commit, so that a failure cannot touch the working tree."""
    path = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(path)], check=True, timeout=120)
    return path


def test_editor_runs_the_loader_on_the_feature_store_and_leaves_git_clean(
    clone, stack_settings, tmp_path
):
    from converge import migrations

    migrations.upgrade(stack_settings)
    asyncio.run(_ingest(stack_settings))
    variables = {"target": TARGET, "exclude": "", "n_splits": 2}
    done = subprocess.run(
        [str(runner.training_python()), "-c", EDITOR, str(clone / "pipelines"), json.dumps(variables)],
        env={**settings_env(stack_settings), "MAGE_DATA_DIR": str(tmp_path / "mage"),
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["entities"] == ["editor-0", "editor-1", "editor-2"]
    assert result["rows"] == 3 * 90
    assert result["splits"] == ["2025-02", "2025-03"]

    status = subprocess.run(
        ["git", "-C", str(clone), "status", "--porcelain"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert status.stdout == "", status.stdout  # no status, no variables_dir in metadata.yaml
