"""``converge ingest FILE``: send a CSV or Parquet file to the ingest function as CloudEvents."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from converge.cli._app import app


@app.command()
def ingest(
    file: Path = typer.Argument(..., help="CSV or Parquet file, one row per entity and time"),
    time_column: str = typer.Option("event_time", help="column with the event time (with a zone)"),
    entity_column: str = typer.Option("entity_id", help="column with the entity id"),
    url: str = typer.Option("http://127.0.0.1:8080", envvar="CONVERGE_INGEST_URL", help="gateway (its /events)"),
    batch: int = typer.Option(2000, min=1, max=10_000, help="rows per features.ingest event"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Every other column becomes a feature; redelivery is safe (idempotent upsert)."""
    import httpx
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from converge.datasets import DataFileError, read_table
    from converge.ingest_client import IngestRejected, send_ingest_events
    from converge.settings import get_settings

    key = get_settings().ingest_token.get_secret_value()
    if not key:
        typer.echo("error: CONVERGE_INGEST_TOKEN is not set (`converge up` writes one to stack.env)", err=True)
        raise typer.Exit(2)
    try:
        vectors = list(read_table(file, time_column=time_column, entity_column=entity_column))
    except DataFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        typer.echo(f"error: {file}: {where}: {first['msg']}", err=True)
        raise typer.Exit(2) from None
    try:
        with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), disable=as_json) as progress:
            task = progress.add_task("ingest", total=len(vectors))
            written = send_ingest_events(
                url.rstrip("/"), vectors, batch, lambda n: progress.advance(task, n), key
            )
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach ingest at {url} ({exc}); is `converge serve` running?", err=True)
        raise typer.Exit(1) from None
    except IngestRejected as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"file": str(file), "rows": len(vectors), "written": written}))
    else:
        typer.echo(f"{len(vectors)} rows sent from {file}, {written} new or changed rows stored")
