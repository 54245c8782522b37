"""``converge train``: run the Mage walk-forward pipeline headless and print what it published.

Mage cannot share an environment with the serving stack, so this command starts the runner in the
training environment (``.venv-mage`` or ``$CONVERGE_TRAIN_PYTHON``) and reads its JSON summary.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from converge.cli._app import app


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


@app.command()
def train(
    as_of: str = typer.Option(None, "--as-of", help="data cut-off (ISO 8601); default: now"),
    estimator: str = typer.Option(
        "gbm", "--estimator", "-e", help="gbm, drf, glm, xgboost, deeplearning, automl"
    ),
    splits: int = typer.Option(6, "--splits", "-n", help="number of walk-forward splits"),
    segment: str = typer.Option(
        None, "--segment", help="column: one model per value (regional pipeline)"
    ),
    model: str = typer.Option("demo", "--model", "-m", help="registered model name"),
    target: str = typer.Option("demand", "--target", "-t", help="target column"),
    exclude: list[str] = typer.Option(None, "--exclude", "-x", help="column not to train on (repeatable)"),
    params: str = typer.Option(
        None, "--params", help="estimator parameters as JSON, e.g. '{\"ntrees\": 50}'"
    ),
    period: str = typer.Option("month", "--period", help="split period: month, week, day"),
    window: str = typer.Option("expanding", "--window", help="expanding or sliding"),
    train_periods: int = typer.Option(
        None, "--train-periods", help="sliding window length in periods"
    ),
    gap: int = typer.Option(0, "--gap", help="embargo periods between train and test"),
    max_models: int = typer.Option(5, "--max-models", help="AutoML: models to train"),
    training_file: str = typer.Option(
        None, "--file", help="train on a CSV/Parquet file instead of the feature store"
    ),
    parallelism: int = typer.Option(
        8, "--parallelism", "-p", help="block runs at once (1 = sequential)"
    ),
    no_publish: bool = typer.Option(False, "--no-publish", help="train and report, store nothing"),
    as_json: bool = typer.Option(False, "--json", help="print the full JSON summary"),
) -> None:
    """Train walk-forward on the H2O cluster through the Mage pipeline; publish the final MOJO."""
    from converge.training import runner

    variables = {
        "model_name": model,
        "target": target,
        "estimator": estimator,
        "n_splits": splits,
        "period": period,
        "window": window,
        "gap_periods": gap,
        "max_models": max_models,
        "publish": not no_publish,
    }
    if params:
        variables["estimator_params"] = params
    if exclude:
        variables["exclude"] = list(exclude)
    if as_of:
        variables["as_of"] = as_of
    if train_periods:
        variables["train_periods"] = train_periods
    if segment:
        variables["segment"] = segment
    if training_file:
        variables["training_file"] = str(Path(training_file).resolve())
    pipeline = "walk_forward_regional" if segment else "walk_forward"
    if not as_json:
        typer.echo(f"running Mage pipeline {pipeline} ({splits} splits, {estimator}) ...", err=True)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    progress = Progress(*columns, console=Console(stderr=True), disable=as_json)
    blocks = progress.add_task("block runs", total=None)
    try:
        with progress:
            outcome = runner.launch(
                pipeline, variables, parallelism=parallelism,
                on_progress=lambda event: progress.update(blocks, advance=1, description=event["block"]),
            )  # fmt: skip
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(outcome, indent=2, default=str))
    if outcome.get("status") != "completed":
        typer.echo(f"error: training failed: {outcome.get('error')}", err=True)
        raise typer.Exit(1)
    if as_json:
        return
    result = outcome["result"] or {}
    typer.echo(
        f"pipeline run {outcome['pipeline_run_id']} completed in {outcome['wall_seconds']:.1f} s"
    )
    for s in result.get("splits", []):
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in s["metrics"].items())
        typer.echo(
            f"  split {s['split']:<24} train={s['n_train']:>7} test={s['n_test']:>6}  "
            f"test from {_when(s['min_test_time_ms'])}  {metrics}"
        )
    for p in result.get("published", []):
        if p.get("version") is None:
            typer.echo(f"trained {p['name']} (not published)")
            continue
        event = p.get("event") or {}
        note = (
            "event delivered"
            if event.get("delivered")
            else f"event NOT delivered: {event.get('error')}"
        )
        typer.echo(f"published {p['name']} v{p['version']} ({p['stage']}) {p['artifact_uri']}")
        typer.echo(f"  sha256 {p['sha256']}  report {p['report_uri']}  {note}")
