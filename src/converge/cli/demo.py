"""``converge demo``: the whole loop on this machine, then serve until Ctrl-C (or ``--no-serve``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from converge.cli._app import app


@app.command()
def demo(
    data: Path = typer.Option(None, "--data", help="your CSV or Parquet file instead of generated data"),
    time_column: str = typer.Option("event_time", help="time column of --data"),
    entity_column: str = typer.Option("entity_id", help="entity column of --data"),
    target: str = typer.Option(None, help="target column (default: high_demand of the generated data)"),
    exclude: list[str] = typer.Option(None, help="columns not to train on (repeatable)"),
    model: str = typer.Option("demo", help="registered model name"),
    splits: int = typer.Option(6, help="monthly walk-forward splits"),
    port: int = typer.Option(8080, help="port of the local gateway (predict, ingest, reload, admin)"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="keep serving until Ctrl-C"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Start the stack, ingest as CloudEvents, train in Mage on H2O, publish, reload, predict."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from converge import demo as steps
    from converge.datasets import BINARY_TARGET, NUMERIC_TARGET
    from converge.errors import ConvergeError
    from converge.ingest_client import send_ingest_events
    from converge.mojo import MojoError
    from converge.settings import Settings
    from converge.stack.credentials import CREDENTIALS

    console = Console(stderr=as_json)
    options = steps.DemoOptions(data=data, model=model, splits=splits, port=port)
    if data is not None:
        options.time_column, options.entity_column = time_column, entity_column
        if target is None:
            raise _fail("--target is required with --data")
        options.exclude = tuple(exclude or ())
    else:
        options.exclude = tuple(exclude) if exclude else (NUMERIC_TARGET,)
    options.target = target or BINARY_TARGET
    result = steps.DemoResult()
    gateway = None
    try:
        console.rule("[bold]1. local stack")
        env = steps.start_stack(console.print)  # with the stack's generated credentials
        env = {**env, **{k: os.environ[k] for k in CREDENTIALS if os.environ.get(k)}}
        os.environ.update(env)
        settings = Settings()
        result.admin_token = env["CONVERGE_ADMIN_TOKEN"]
        env.update(
            CONVERGE_DEFAULT_MODEL=options.model,
            CONVERGE_BROKER_URL=f"http://127.0.0.1:{port}/events",
            CONVERGE_REGISTRY_POLL_S="2",
        )

        console.rule("[bold]2. migrations (through PgBouncer)")
        from converge import migrations

        migrations.upgrade(settings)
        console.print("  schema at head")

        console.rule("[bold]3. functions")
        # The functions only read artifacts: they get the object store's read-only identity.
        reader = {
            "CONVERGE_S3_ACCESS_KEY": env["CONVERGE_S3_READER_ACCESS_KEY"],
            "CONVERGE_S3_SECRET_KEY": env["CONVERGE_S3_READER_SECRET_KEY"],
        }
        gateway = steps.Gateway({**env, **reader}, port, settings.state_dir / "logs" / "gateway.log")
        gateway.start()
        console.print(f"  predict, ingest, reload and admin on {gateway.url}")

        console.rule("[bold]4. ingest as features.ingest CloudEvents")
        vectors = steps.load_vectors(options)
        result.rows_sent = len(vectors)
        columns = [TextColumn("  ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("ingest", total=len(vectors))
            result.rows_stored = send_ingest_events(
                gateway.url,
                vectors,
                options.batch_rows,
                lambda n: progress.advance(task, n),
                env["CONVERGE_INGEST_TOKEN"],
            )
        console.print(f"  {result.rows_sent} rows sent, {result.rows_stored} new or changed rows stored")

        console.rule("[bold]5. train walk-forward in Mage on H2O")
        columns = [TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console) as progress:
            splits_task = progress.add_task("splits", total=options.splits)

            def on_progress(event: dict) -> None:
                if ":" in event["block"]:  # a dynamic child: one walk-forward split
                    progress.advance(splits_task)
                elif event["block"].startswith("publish"):
                    progress.update(splits_task, description="final model, MOJO, upload, register")

            trained = steps.train(options, {**os.environ, **env}, on_progress)
        result.splits = trained.get("splits", [])
        split_table = Table("split", "train rows", "test rows", "metrics", box=None)
        for s in result.splits:
            split_table.add_row(
                str(s["split"]), str(s["n_train"]), str(s["n_test"]),
                ", ".join(f"{k}={v:.3f}" for k, v in s["metrics"].items()),
            )
        console.print(split_table)
        published = next((p for p in trained.get("published", []) if p.get("version")), None)
        if published is None:
            raise steps.DemoError("training finished but published no model version")
        result.version = int(published["version"])
        console.print(f"  published {options.model} v{result.version}  sha256 {published['sha256'][:16]}…")
        result.report_path = steps.fetch_report(
            settings, published.get("report_uri"), settings.state_dir / "reports", options.model, result.version
        )
        event = published.get("event") or {}
        console.print(
            "  model.published delivered to reload"
            if event.get("delivered")
            else f"  model.published not delivered ({event.get('error') or event.get('status')})"
        )

        console.rule("[bold]6. reload (model.published) and predict")
        with console.status("  waiting for reload to verify, promote and swap ..."):
            steps.wait_for_version(gateway.url, options.model, result.version)
        result.predictions = steps.check_predictions(
            gateway.url, settings, options.model, result.version, vectors
        )
        table = Table("entity", "label", "probabilities", "version", box=None)
        for p in result.predictions:
            probabilities = ", ".join(f"{k}={v:.3f}" for k, v in (p.get("probabilities") or {}).items())
            table.add_row(p["entity_id"], str(p["label"]), probabilities, str(result.version))
        console.print(table)
        console.print("  served predictions equal the scorer's own answers")

        result.urls = {
            "predict": f"{gateway.url}/predict",
            "ingest": f"{gateway.url}/ingest",
            "events (CloudEvents)": f"{gateway.url}/events",
            "open inference (V2)": f"{gateway.url}/v2/models/{options.model}",
            "admin API docs": f"{gateway.url}/docs",
            "metrics": f"{gateway.url}/metrics",
            "training report": result.report_path.as_uri() if result.report_path else "-",
            "gateway log": str(gateway.log_path),
        }
    except KeyboardInterrupt:
        if gateway:
            gateway.stop()
        raise _fail("interrupted") from None
    except (ConvergeError, MojoError, OSError, RuntimeError) as exc:
        if gateway:
            gateway.stop()
        raise _fail(f"{exc}\n  logs: {settings_dir()}/logs; the stack keeps running (`converge down` stops it)") from None

    if as_json:
        typer.echo(json.dumps(_summary(result), default=str, indent=2))
    else:
        console.rule("[bold]ready")
        where = Table(box=None, show_header=False)
        for name, url in result.urls.items():
            where.add_row(name, url)
        console.print(where)
        console.print(f"  admin token: {result.admin_token}")
        console.print('  try: converge predict --entity store-0001')
    if not serve:
        gateway.stop()
        return
    console.print("serving; Ctrl-C stops the functions (`converge down` stops the stack)")
    try:
        gateway.wait()
    except KeyboardInterrupt:
        gateway.stop()


def _summary(result) -> dict:
    return {
        "rows_sent": result.rows_sent,
        "rows_stored": result.rows_stored,
        "version": result.version,
        "splits": result.splits,
        "predictions": result.predictions,
        "urls": result.urls,
        "report": str(result.report_path) if result.report_path else None,
    }


def settings_dir() -> Path:
    from converge.settings import default_state_dir

    return default_state_dir()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)
