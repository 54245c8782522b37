"""Run a Mage pipeline of the training project headless, with its dynamic blocks in parallel.

Plain ``mage run PROJECT PIPELINE`` fails on dynamic pipelines, and ``mage run --pipeline-run-id``
runs block runs one after another. This runner does what Mage's scheduler does, without a server:
it creates the pipeline run, then repeatedly asks Mage which block runs are executable and executes
them with Mage's block executor: blocks that run alone in this process, and each dynamic child (one
per split) as its own process, up to ``parallelism`` at a time, so the splits train concurrently on
the H2O cluster.

One executor per run: Mage's scheduler takes every running run whose trigger belongs to one of the
project's pipelines, and re-runs block runs it did not start itself as crashed. The runs made here
hang under a trigger of their own whose pipeline is ``<pipeline>.headless`` (no pipeline of the
project), so a Mage scheduler on the same database never takes them, while the UI, which lists
runs by their own pipeline, shows them with their block runs and logs.

It must run in the training environment (mage-ai installed): ``python -m converge.training.runner``.
The last line on stdout is a JSON summary; the exit code is 0 only if every block completed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEDULE_NAME = "converge train (headless)"
# The trigger's pipeline: no pipeline of the project has this name, so no scheduler takes its runs.
HEADLESS_SUFFIX = ".headless"
# The last line of a Python traceback: ``package.module.SomeError: message``.
_ERROR_LINE = re.compile(r"^((?:[a-z_]\w*\.)*[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*): (.+)$")


def default_project() -> Path:
    """``$CONVERGE_PIPELINES_DIR``, else ``pipelines/`` at the root of this source tree."""
    explicit = os.environ.get("CONVERGE_PIPELINES_DIR")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parents[3] / "pipelines"


def default_data_dir() -> Path:
    """Mage's variables and run database for converge: ``<state_dir>/mage``."""
    from converge.settings import default_state_dir

    return default_state_dir() / "mage"


def training_python() -> Path:
    """The interpreter of the training environment (mage-ai, h2o): ``$CONVERGE_TRAIN_PYTHON``,
    else ``.venv-mage`` at the root of this source tree, else this interpreter if Mage imports."""
    explicit = os.environ.get("CONVERGE_TRAIN_PYTHON")
    if explicit:
        return Path(explicit)
    beside = Path(__file__).resolve().parents[3] / ".venv-mage" / "bin" / "python"
    if beside.exists():
        return beside
    import importlib.util

    if importlib.util.find_spec("mage_ai") is not None:
        return Path(sys.executable)
    raise FileNotFoundError(
        "no training environment: create .venv-mage (pip install -e '.[train]') or set CONVERGE_TRAIN_PYTHON"
    )


def launch(
    pipeline_uuid: str = "walk_forward",
    variables: dict[str, Any] | None = None,
    *,
    python: Path | None = None,
    project: Path | None = None,
    data_dir: Path | None = None,
    parallelism: int = 8,
    timeout_s: float = 3600.0,
    env: dict[str, str] | None = None,
    inline: bool = True,
    children: str | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run :func:`run` in the training environment from any environment; return its summary.

    ``on_progress`` gets one event per finished block run (``block``, ``status``, ``seconds``).
    """
    cmd = [
        str(python or training_python()),
        "-m",
        "converge.training.runner",
        "--pipeline",
        pipeline_uuid,
        "--vars",
        json.dumps(variables or {}, default=str),
        "--parallelism",
        str(parallelism),
        "--timeout",
        str(timeout_s),
    ]
    if project is not None:
        cmd += ["--project", str(project)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    if not inline:
        cmd.append("--no-inline")
    if children:
        cmd += ["--children", children]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    out: list[str] = []
    drain = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    drain.start()
    watchdog = threading.Timer(timeout_s + 120, proc.kill)
    watchdog.start()
    errors: list[str] = []
    try:
        for line in proc.stderr:  # progress events arrive here while the run goes on
            if on_progress is not None and line.startswith(PROGRESS_PREFIX):
                on_progress(json.loads(line[len(PROGRESS_PREFIX) :]))
            else:
                errors.append(line)
        proc.wait()
    finally:
        watchdog.cancel()
    drain.join()
    stdout = "".join(out)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = ("".join(errors) or stdout).strip().splitlines()[-5:]
        return {
            "status": "failed",
            "error": f"runner exited {proc.returncode}: " + " | ".join(tail),
        }
    return json.loads(lines[-1])


PROGRESS_PREFIX = "converge-progress "


class _ReportingList(list):
    """Block timings that also announce each finished block on stderr, for a progress bar."""

    def append(self, timing: BlockTiming) -> None:
        super().append(timing)
        event = {"block": timing.block_uuid, "status": timing.status, "seconds": round(timing.seconds, 2)}
        print(PROGRESS_PREFIX + json.dumps(event), file=sys.stderr, flush=True)


@dataclass
class BlockTiming:
    block_uuid: str
    status: str
    seconds: float
    started_s: float = 0.0  # offset from the start of the run
    exit_code: int | None = None
    log: str | None = None


@dataclass
class RunResult:
    pipeline_uuid: str
    pipeline_run_id: int
    status: str
    wall_seconds: float
    parallelism: int
    blocks: list[BlockTiming] = field(default_factory=list)
    error: str | None = None
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline_uuid,
            "pipeline_run_id": self.pipeline_run_id,
            "status": self.status,
            "wall_seconds": self.wall_seconds,
            "parallelism": self.parallelism,
            "blocks": [b.__dict__ for b in self.blocks],
            "error": self.error,
            "result": self.result,
        }


def error_from_log(text: str) -> str | None:
    """The last ``SomeError: message`` line of a block's output: what a user needs to read."""
    found = None
    for line in text.splitlines():
        match = _ERROR_LINE.match(line.strip())
        if match:
            found = f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"
    return found


def _prepare_mage(project: Path, data_dir: Path) -> None:
    """Mage reads its data directory and project path from the environment at import time."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MAGE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DYNAMIC_BLOCKS_VERSION", "1")
    from mage_ai.settings.repo import set_repo_path

    set_repo_path(str(project))
    from mage_ai.orchestration.db import db_connection
    from mage_ai.orchestration.db.database_manager import database_manager

    # Mage's own schema migrations take seconds; run them once per data directory and Mage version.
    from mage_ai.server.constants import VERSION

    # Two trainings started at once on a fresh directory must not both migrate (duplicate columns).
    marker = data_dir / f".converge-mage-schema-{VERSION}"
    if not marker.exists():
        with open(data_dir / ".converge-mage-schema.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not marker.exists():
                database_manager.run_migrations(log_level=logging.WARNING)
                marker.touch()
    db_connection.start_session()


def _schedule(pipeline_uuid: str, project: Path):
    """The trigger the headless runs hang under: inactive, and named after no pipeline of the
    project, so that no Mage scheduler ever starts or resumes its runs (see the module's doc)."""
    from mage_ai.orchestration.db.models.schedules import (
        PipelineSchedule,
        ScheduleStatus,
        ScheduleType,
    )

    owner = pipeline_uuid + HEADLESS_SUFFIX
    found = PipelineSchedule.query.filter(
        PipelineSchedule.name == SCHEDULE_NAME, PipelineSchedule.pipeline_uuid == owner
    ).first()
    if found is not None:
        return found
    return PipelineSchedule.create(
        name=SCHEDULE_NAME,
        pipeline_uuid=owner,
        schedule_type=ScheduleType.API,
        status=ScheduleStatus.INACTIVE,
        repo_path=str(project),
    )


def run(
    pipeline_uuid: str = "walk_forward",
    variables: dict[str, Any] | None = None,
    *,
    project: Path | None = None,
    data_dir: Path | None = None,
    parallelism: int = 8,
    timeout_s: float = 3600.0,
    env: dict[str, str] | None = None,
    inline: bool = True,
    children: str = "fork" if hasattr(os, "fork") else "spawn",
) -> RunResult:
    """Create a pipeline run and execute it to the end; never raises for a failed block.

    With ``inline`` the blocks that run alone (loader, planner, the dynamic controller, the
    reduce) execute in this process, one after another as their dependencies demand; only the
    dynamic children get processes of their own, which is where parallelism pays. ``children``
    says how those processes start: ``fork`` (a copy of this process, Mage and h2o already
    imported) or ``spawn`` (a fresh ``mage run`` per block run, what a remote executor does).
    """
    project = (project or default_project()).resolve()
    data_dir = (data_dir or default_data_dir()).resolve()
    parallelism = max(1, parallelism)
    started = time.perf_counter()
    if env:
        os.environ.update(env)
    from converge.settings import get_settings

    get_settings.cache_clear()
    _prepare_mage(project, data_dir)

    from mage_ai.data_preparation.models.pipeline import Pipeline
    from mage_ai.orchestration.db.models.schedules import PipelineRun

    pipeline = Pipeline.get(pipeline_uuid, repo_path=str(project))
    schedule = _schedule(pipeline_uuid, project)
    tag = uuid.uuid4().hex[:10]
    logs = data_dir / "converge-logs" / tag
    logs.mkdir(parents=True, exist_ok=True)
    result_path = logs / "result.json"
    run_vars = {**(pipeline.variables or {}), **(variables or {})}
    # The lineage run id is Mage's own (``steps.run_id_of``): ``<pipeline>-<pipeline run id>``.
    run_vars["result_path"] = str(result_path)
    # Mage keeps block outputs under ``<trigger>/<execution second>``; two runs started in the
    # same second would share them, so each run gets a partition of its own.
    now = datetime.now(UTC)
    run_vars["execution_partition"] = f"{schedule.id}/{now:%Y%m%dT%H%M%S}_{tag}"
    pipeline_run = PipelineRun.create(
        pipeline_uuid=pipeline_uuid,
        pipeline_schedule_id=schedule.id,
        execution_date=now,
        status=PipelineRun.PipelineRunStatus.RUNNING,
        started_at=datetime.now(UTC),
        variables=run_vars,
    )
    if children not in ("fork", "spawn"):
        raise ValueError(f"children must be 'fork' or 'spawn', got {children!r}")
    execution = _Execution(
        pipeline, pipeline_run, project, logs, started,
        children=children, inline=inline, parallelism=parallelism,
        child_env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    error = execution.until_done(time.monotonic() + timeout_s, timeout_s)
    status = "completed" if error is None else "failed"
    pipeline_run.update(
        status=PipelineRun.PipelineRunStatus.COMPLETED
        if error is None
        else PipelineRun.PipelineRunStatus.FAILED,
        completed_at=datetime.now(UTC),
    )
    result = json.loads(result_path.read_text()) if result_path.exists() and error is None else None
    return RunResult(
        pipeline_uuid=pipeline_uuid,
        pipeline_run_id=pipeline_run.id,
        status=status,
        wall_seconds=time.perf_counter() - started,
        parallelism=parallelism,
        blocks=execution.timings,
        error=error,
        result=result,
    )


class _Execution:
    """One pipeline run driven to its end: block runs that run alone execute in this process,
    dynamic children in processes of their own (at most ``parallelism``); the first failed block
    is the run's error."""

    def __init__(
        self, pipeline: Any, pipeline_run: Any, project: Path, logs: Path, started: float, *,
        children: str, inline: bool, parallelism: int, child_env: dict[str, str],
    ) -> None:  # fmt: skip
        self.pipeline, self.pipeline_run = pipeline, pipeline_run
        self.project, self.logs, self.started = project, logs, started
        self.children, self.inline, self.parallelism = children, inline, parallelism
        self.child_env = child_env
        self.running: dict[int, tuple[Any, str, float, Path]] = {}
        self.launched: set[int] = set()
        self.timings: list[BlockTiming] = _ReportingList()
        self.error: str | None = None

    def _log_path(self, block_run: Any) -> Path:
        return self.logs / f"{block_run.block_uuid.replace(':', '__')}.log"

    def _start(self, block_run: Any) -> Path:
        from mage_ai.orchestration.db.models.schedules import BlockRun

        self.launched.add(block_run.id)
        block_run.update(status=BlockRun.BlockRunStatus.RUNNING, started_at=datetime.now(UTC))
        return self._log_path(block_run)

    def _finished(
        self, block_run: Any, t0: float, code: int | None, log_path: Path, failure: str | None
    ) -> None:
        """Record a block run that ended; a failed one (failed exit, failure text or status set
        by Mage) becomes the run's error unless an earlier one did."""
        from mage_ai.orchestration.db.models.schedules import BlockRun

        _refresh(block_run)
        if (failure or code) and block_run.status != BlockRun.BlockRunStatus.FAILED:
            block_run.update(status=BlockRun.BlockRunStatus.FAILED)
        status = str(block_run.status.value if hasattr(block_run.status, "value") else block_run.status)
        self.timings.append(BlockTiming(
            block_run.block_uuid, status, time.perf_counter() - t0, t0 - self.started, code, str(log_path)
        ))  # fmt: skip
        if status != "completed" and self.error is None:
            detail = failure or (
                error_from_log(log_path.read_text(errors="replace")) or f"exit code {code}"
                if code is not None else "see " + str(log_path)
            )  # fmt: skip
            self.error = f"block {block_run.block_uuid} failed: {detail}"

    def launch(self, block_run: Any) -> None:
        """A dynamic child in a process of its own (forked, or a fresh ``mage run``)."""
        log_path = self._start(block_run)
        if self.children == "fork":
            pipeline, pipeline_run, br_id, uuid_ = (
                self.pipeline, self.pipeline_run, block_run.id, block_run.block_uuid
            )
            proc: Any = _Forked(lambda: _execute_block(pipeline, pipeline_run, br_id, uuid_), log_path)
        else:
            cmd = [
                sys.executable, "-m", "mage_ai.cli.main", "run", str(self.project),
                self.pipeline.uuid, "--block-uuid", block_run.block_uuid,
                "--block-run-id", str(block_run.id), "--pipeline-run-id", str(self.pipeline_run.id),
                "--execution-partition", self.pipeline_run.execution_partition, "--skip-sensors",
            ]  # fmt: skip
            with open(log_path, "wb") as out:
                proc = subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, env=self.child_env, cwd=str(self.project)
                )
        self.running[block_run.id] = (proc, block_run.block_uuid, time.perf_counter(), log_path)

    def run_inline(self, block_run: Any) -> None:
        """One block run in this process, the way ``mage run --block-uuid`` would run it."""
        import contextlib
        import traceback

        log_path = self._start(block_run)
        t0 = time.perf_counter()
        failure = None
        with (
            open(log_path, "w") as out,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            try:
                _execute_block(self.pipeline, self.pipeline_run, block_run.id, block_run.block_uuid)
            except Exception as exc:  # noqa: BLE001 - the block's own error, reported below
                traceback.print_exc(file=out)
                failure = f"{type(exc).__name__}: {_first_line(exc)}"
        self._finished(block_run, t0, None, log_path, failure)

    def reap(self) -> None:
        from mage_ai.orchestration.db.models.schedules import BlockRun

        for br_id, (proc, _uuid, t0, log_path) in list(self.running.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.running[br_id]
            self._finished(BlockRun.query.get(br_id), t0, code, log_path, None)

    def until_done(self, deadline: float, timeout_s: float) -> str | None:
        """Drive the run until every block completed, one failed, or the deadline; the error."""
        pipeline_run = self.pipeline_run
        while True:
            self.reap()
            _refresh(pipeline_run)
            if self.error is not None and not self.running:
                break
            if self.error is None:
                pipeline_run.update_block_run_statuses(pipeline_run.initial_block_runs)
                ready = [b for b in pipeline_run.executable_block_runs() if b.id not in self.launched]
                alone = [b for b in ready if self.inline and ":" not in b.block_uuid]
                if alone and not self.running:
                    self.run_inline(alone[0])
                    continue
                for block_run in [b for b in ready if b not in alone][: self.parallelism - len(self.running)]:
                    self.launch(block_run)
            if not self.running:
                _refresh(pipeline_run)
                if pipeline_run.all_blocks_completed():
                    break
                if self.error is None and not [
                    b for b in pipeline_run.executable_block_runs() if b.id not in self.launched
                ]:
                    stuck = [
                        f"{b.block_uuid}={b.status}"
                        for b in pipeline_run.block_runs
                        if b.status != "completed"
                    ]
                    self.error = f"pipeline run {pipeline_run.id} cannot make progress: {', '.join(stuck)}"
                    break
            if time.monotonic() > deadline:
                self.error = f"pipeline run {pipeline_run.id} timed out after {timeout_s:.0f} s"
                for proc, *_ in self.running.values():
                    proc.terminate()
                break
            time.sleep(0.1)
        return self.error


def _execute_block(pipeline, pipeline_run, block_run_id: int, block_uuid: str) -> None:
    """Mage's block executor on one block run, as ``mage run --block-uuid --block-run-id`` does."""
    from mage_ai.data_preparation.executors.executor_factory import ExecutorFactory

    ExecutorFactory.get_block_executor(
        pipeline,
        block_uuid,
        block_run_id=block_run_id,
        execution_partition=pipeline_run.execution_partition,
    ).execute(
        analyze_outputs=False,
        block_run_id=block_run_id,
        global_vars=pipeline_run.get_variables(),
        pipeline_run_id=pipeline_run.id,
        update_status=False,
    )


class _Forked:
    """A block run in a forked copy of this process; ``poll()`` like a Popen."""

    def __init__(self, work, log_path: Path) -> None:
        from mage_ai.orchestration.db import db_connection

        db_connection.session.commit()  # no database connection checked out while forking
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        self.returncode: int | None = None
        if self.pid == 0:  # the child: own database connections, output to the block's log
            code = 1
            try:
                import traceback

                from mage_ai.orchestration.db import engine

                engine.dispose(close=False)  # new connections here; the parent keeps its own
                fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                try:
                    work()
                    code = 0
                except BaseException:  # noqa: BLE001
                    traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def terminate(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, 15)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def _refresh(row) -> None:
    from mage_ai.orchestration.db import db_connection

    try:
        db_connection.session.refresh(row)
    except Exception:  # noqa: BLE001
        db_connection.session.rollback()
        db_connection.session.refresh(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m converge.training.runner", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pipeline", default="walk_forward")
    parser.add_argument("--vars", default="{}", help="pipeline variables as a JSON object")
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument(
        "--no-inline", action="store_true", help="every block run in its own process"
    )
    parser.add_argument(
        "--children",
        choices=("fork", "spawn"),
        default=None,
        help="how dynamic children start (default: fork where available)",
    )
    args = parser.parse_args(argv)
    variables = json.loads(args.vars)
    try:
        outcome = run(
            args.pipeline,
            variables,
            project=args.project,
            data_dir=args.data_dir,
            parallelism=args.parallelism,
            timeout_s=args.timeout,
            inline=not args.no_inline,
            **({"children": args.children} if args.children else {}),
        )
    except Exception as exc:  # noqa: BLE001 - set-up failed before any block ran
        print(json.dumps({"status": "failed", "error": f"{type(exc).__name__}: {exc}"}))
        return 2
    print(json.dumps(outcome.to_dict(), default=str))
    return 0 if outcome.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
