"""CONVERGE_NO_SKIPS: no test can disappear, whether skipped at run time, at collection, or lost to
an import error; the summary says how many tests ran of how many were collected.

Each case runs pytest in a subprocess on a small test directory that uses this suite's own
conftest (copied), so the hooks under test are the real ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _run(tmp_path: Path, files: dict[str, str], *, no_skips: bool) -> subprocess.CompletedProcess:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "CONVERGE_NO_SKIPS": "1" if no_skips else "0"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, "-o", "asyncio_mode=auto"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


COLLECTION_SKIP = 'import pytest\npytest.importorskip("no_such_module_here")\ndef test_a():\n    pass\n'
IMPORT_ERROR = "import no_such_module_here\ndef test_b():\n    pass\n"
PLAIN = "def test_c():\n    pass\n"
RUN_SKIP = "import pytest\ndef test_d():\n    pytest.skip('tool missing')\n"
MARKED_SKIP = (
    "import pytest\n@pytest.mark.needs_docker_engine\n"
    "def test_e():\n    pytest.skip('no Docker engine')\n"
)


def test_a_module_skipped_at_collection_fails_the_run(tmp_path):
    result = _run(tmp_path, {"test_one.py": COLLECTION_SKIP, "test_two.py": PLAIN}, no_skips=True)
    assert result.returncode != 0, result.stdout
    assert "skipped at collection" in result.stdout
    assert "no_such_module_here" in result.stdout
    assert "1 module(s) not collected" in result.stdout


def test_a_collection_skip_is_only_a_skip_without_the_rule(tmp_path):
    result = _run(tmp_path, {"test_one.py": COLLECTION_SKIP, "test_two.py": PLAIN}, no_skips=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_an_import_error_fails_the_run(tmp_path):
    result = _run(tmp_path, {"test_one.py": IMPORT_ERROR, "test_two.py": PLAIN}, no_skips=True)
    assert result.returncode != 0, result.stdout
    assert "ModuleNotFoundError" in result.stdout


def test_a_skip_at_run_time_fails_the_run(tmp_path):
    result = _run(tmp_path, {"test_one.py": RUN_SKIP, "test_two.py": PLAIN}, no_skips=True)
    assert result.returncode != 0, result.stdout
    assert "CONVERGE_NO_SKIPS=1 requires every test to run" in result.stdout
    assert "converge: ran 1 of 2 collected tests" in result.stdout


def test_only_the_docker_engine_skip_is_allowed_and_it_is_counted(tmp_path):
    result = _run(tmp_path, {"test_one.py": MARKED_SKIP, "test_two.py": PLAIN}, no_skips=True)
    assert result.returncode == 0, result.stdout
    assert "converge: ran 1 of 2 collected tests (1 skipped: marked needs_docker_engine" in result.stdout


@pytest.mark.parametrize("no_skips", [True, False])
def test_the_summary_counts_every_test(tmp_path, no_skips):
    result = _run(tmp_path, {"test_one.py": PLAIN, "test_two.py": PLAIN}, no_skips=no_skips)
    assert result.returncode == 0, result.stdout
    assert "converge: ran 2 of 2 collected tests" in result.stdout
