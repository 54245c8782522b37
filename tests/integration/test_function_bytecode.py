"""The function image ships bytecode for every module the predict function imports.

The image runs on a read-only root filesystem with ``PYTHONDONTWRITEBYTECODE=1``: a module without
its ``.pyc`` in the image is compiled from source at every cold start. There is no Docker engine
here, so the test reproduces the image's compile step instead of building the image: it takes the
final stage's ``compileall`` command from ``docker/Dockerfile.functions`` and runs it, with the same
options, over this machine's copy of what the image holds under the directories it names:

- ``/usr/local/lib/python3.11``: this interpreter's standard library, less the test suites the slim
  base image deletes (and its ``site-packages``: pip and setuptools, which the function never loads);
- ``/opt/venv/.../site-packages``: the files of every distribution ``converge[serve]`` installs
  (the image installs exactly that closure), and converge's own sources (editable here);
- ``/app/functions``: ``functions/``.

The bytecode goes to an empty ``PYTHONPYCACHEPREFIX``, so only what this step wrote can be read.
Then the predict function starts as the image starts it, under ``python -v``, serves a first
prediction, a batch and its metrics, and runs its background start-up (NumPy, the parser process,
the reload subscription); every module it compiled from source is a module the image lacks
bytecode for. Modules of packages this machine has and the image does not (uvicorn imports
``watchfiles`` when it is installed) are not the image's concern and are left out.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as metadata
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from converge.checkout import CORPUS, REPO
from converge.serving.testing import read_rows, register_model, settings_env
from converge.stack.procs import free_port

DOCKERFILE = REPO / "docker" / "Dockerfile.functions"
IMAGE_STDLIB = "/usr/local/lib/python3.11"
IMAGE_SITE = "/opt/venv/lib/python3.11/site-packages"
IMAGE_FUNCTIONS = "/app/functions"
SLIM_DELETES = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
FROM_SOURCE = re.compile(r"^# code object from (/\S+\.py)$", re.MULTILINE)
FROM_PYC = re.compile(r"^# code object from '(/\S+\.pyc)'$", re.MULTILINE)


def final_stage_runs(dockerfile: Path) -> list[str]:
    """The RUN commands of the last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    runs: list[str] = []
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word.upper() == "FROM":
            runs = []
        elif word.upper() == "RUN":
            runs.append(rest.strip())
    return runs


def compile_command(dockerfile: Path) -> tuple[list[str], list[str]]:
    """(compileall options, directories) of the final stage's ``python -m compileall`` RUN."""
    found = [r for r in final_stage_runs(dockerfile) if "compileall" in r]
    assert len(found) == 1, f"one compileall RUN in the final stage, found {found}"
    argv = shlex.split(found[0])
    assert argv[:3] == ["python", "-m", "compileall"], argv
    options, dirs = [], []
    rest = iter(argv[3:])
    for arg in rest:
        if arg.startswith("/"):
            dirs.append(arg.rstrip("/"))
        else:
            options.append(arg)
            if arg in ("-j", "--invalidation-mode", "-r", "-x", "-o", "-e"):
                options.append(next(rest))
    return options, dirs


def serve_closure() -> list[metadata.Distribution]:
    """``converge[serve]`` and everything it requires, as pip resolves it for the image."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [("converge", {"serve"})]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
                todo.append((req.name, set(req.extras)))
    return list(seen.values())


def image_sources(dirs: list[str]) -> list[Path]:
    """This machine's copy of the ``.py`` files under the image's ``dirs``."""
    files: list[Path] = []
    for image_dir in dirs:
        if image_dir == IMAGE_STDLIB:
            root = Path(sysconfig.get_paths()["stdlib"])
            for path in root.rglob("*.py"):
                if not SLIM_DELETES & set(path.relative_to(root).parts[:-1]):
                    files.append(path)
        elif image_dir == IMAGE_SITE:
            for dist in serve_closure():
                files += [Path(dist.locate_file(f)) for f in dist.files or [] if f.suffix == ".py"]
            files += sorted((REPO / "src" / "converge").rglob("*.py"))
        elif image_dir == IMAGE_FUNCTIONS:
            files += sorted((REPO / "functions").rglob("*.py"))
        else:
            pytest.fail(f"the compile step names {image_dir}, which this test does not map")
    return [f.resolve() for f in files if f.is_file()]


def test_the_image_compiles_the_standard_library_its_packages_and_functions() -> None:
    options, dirs = compile_command(DOCKERFILE)
    assert set(dirs) == {IMAGE_STDLIB, IMAGE_SITE, IMAGE_FUNCTIONS}, dirs
    mode = options[options.index("--invalidation-mode") + 1]
    # timestamp .pyc files go stale when an image builder rewrites mtimes; hashes do not
    assert mode in ("unchecked-hash", "checked-hash"), mode
    assert "PYTHONDONTWRITEBYTECODE=1" in DOCKERFILE.read_text(), "the runtime writes no bytecode"


@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(
        update={"default_model": f"pyc-{uuid.uuid4().hex[:8]}", "registry_poll_s": 30.0}
    )


@pytest.mark.integration
async def test_predict_imports_nothing_the_image_has_no_bytecode_for(settings, pool, tmp_path) -> None:
    options, dirs = compile_command(DOCKERFILE)
    sources = image_sources(dirs)
    prefix = tmp_path / "pycache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPYCACHEPREFIX=str(prefix), PYTHONDONTWRITEBYTECODE="1")
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", *options, "-i", "-"],
        input="\n".join(map(str, sources)), env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert compiled.returncode == 0, f"the image build would fail here:\n{compiled.stdout[-3000:]}"

    rows = read_rows(CORPUS / "binomial.input.csv", 10)
    await register_model(
        settings, pool, settings.default_model, (CORPUS / "binomial.zip").read_bytes(), rows,
        promote=True,
    )  # fmt: skip
    port = free_port()
    log = tmp_path / "predict.log"
    argv = [
        sys.executable, "-v", "-m", "converge.serving.serve_function", "--target", "predict",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env={**env, **settings_env(settings)}, stdout=out, stderr=out,
            cwd=REPO, start_new_session=True,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    first = await client.post("/predict", json={"features": rows[0]})
                    if first.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "predict never answered 200"
                await asyncio.sleep(0.05)
            batch = await client.post("/predict", json={"instances": [{"features": r} for r in rows]})
            assert batch.status_code == 200, batch.text
            assert (await client.get("/metrics")).status_code == 200
            # the start's background work: NumPy, the parser process, the reload subscription
            await asyncio.sleep(4.0)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
    text = log.read_text(errors="replace")
    # what the image holds, whether or not its compile step covers it
    in_image = set(map(str, image_sources([IMAGE_STDLIB, IMAGE_SITE, IMAGE_FUNCTIONS])))
    from_source = sorted({p for p in FROM_SOURCE.findall(text) if str(Path(p).resolve()) in in_image})
    from_pyc = set(FROM_PYC.findall(text))
    assert from_source == [], f"compiled from source at start: {from_source}"
    # the check saw the start: the app, the registry's driver, the download, NumPy after it
    for module in ("converge/serving/web/functions", "asyncpg/__init__", "converge/s3_reader", "numpy/__init__"):
        assert any(f"{module}.cpython" in p for p in from_pyc), module
