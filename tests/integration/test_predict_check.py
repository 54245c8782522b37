"""`helm test`'s prediction check (``python -m converge.serving.predict_check``) against a real
predict function: it passes when predict answers what genmodel answered for the validation
sample, and fails, saying why, when it does not or when there is nothing to check yet."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from converge.checkout import CORPUS, REPO
from converge.serving.testing import (
    FunctionProcess,
    read_rows,
    register_model,
    settings_env,
    trainer_predictions,
)
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(update={"default_model": f"check-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="module")
def predict(settings, tmp_path_factory):
    fn = FunctionProcess(
        "predict", REPO / "functions" / "main.py", settings, free_port(),
        tmp_path_factory.mktemp("check") / "predict.log",
    ).start()  # fmt: skip
    yield fn
    fn.stop()


def _check(settings, model: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings), "CONVERGE_DEFAULT_MODEL": model}
    return subprocess.run(
        [sys.executable, "-m", "converge.serving.predict_check", url],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


async def test_a_fresh_install_with_no_model_fails_and_says_so(settings, pool, predict):
    result = _check(settings, settings.default_model, predict.url)
    assert result.returncode == 1
    assert "has no production version yet" in result.stderr


async def test_passes_when_predict_answers_what_genmodel_answered(settings, pool, predict):
    mojo = (CORPUS / "binomial.zip").read_bytes()
    rows = read_rows(CORPUS / "binomial.input.csv", 12)
    mv = await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    result = _check(settings, settings.default_model, predict.url)
    assert result.returncode == 0, result.stderr
    assert f"v{mv.version}: 12 predictions match" in result.stdout


async def test_fails_when_predict_disagrees_with_the_trainer(settings, pool, predict):
    mojo = (CORPUS / "binomial.zip").read_bytes()
    rows = read_rows(CORPUS / "binomial.input.csv", 12)
    wrong = trainer_predictions(mojo, rows)
    wrong[3] = {**wrong[3], "p1": wrong[3]["p1"] + 1e-6}  # what a different model would answer
    name = f"{settings.default_model}-wrong"
    await register_model(settings, pool, name, mojo, rows, predictions=wrong, promote=True)
    result = _check(settings, name, predict.url)
    assert result.returncode == 1
    assert "row 3: P(1)" in result.stderr


def test_an_unreachable_registry_is_one_line_not_a_traceback(stack_settings):
    bad = stack_settings.model_copy()
    env = {**os.environ, **settings_env(bad), "CONVERGE_DATABASE_URL": "postgresql://x:y@127.0.0.1:1/z"}
    result = subprocess.run(
        [sys.executable, "-m", "converge.serving.predict_check", "http://127.0.0.1:1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: DatabaseUnavailable") and "Traceback" not in result.stderr
