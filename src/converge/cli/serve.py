"""``converge serve`` (the three functions and the admin API in one process) and ``converge
predict`` (send rows to a running predict endpoint, print a table or JSON)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import typer

from converge.cli._app import app


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8080, help="port (the default broker_url points here: /events)"),
    workers: int = typer.Option(1, help="uvicorn worker processes"),
    log_level: str = typer.Option("warning", help="uvicorn log level"),
    grpc_port: int = typer.Option(
        8081, envvar="CONVERGE_GRPC_PORT", help="Open Inference Protocol over gRPC (0: off)"
    ),
) -> None:
    """Serve predict, ingest, reload (CloudEvents at /events) and the admin API on one port, and
    predict's gRPC API (KServe's V2 protocol) on a second."""
    import os

    import uvicorn

    os.environ["CONVERGE_GRPC_PORT"] = str(grpc_port)
    os.environ["CONVERGE_GRPC_HOST"] = host

    uvicorn.run(
        "converge.serving.web.gateway:create_gateway",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        lifespan="on",
    )


def _number(value: str) -> Any:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def read_instances(text: str, fmt: str) -> list[dict[str, Any]]:
    """Instances from JSON (an object, a list, or ``{"instances": [...]}``) or CSV with a header."""
    import orjson

    if fmt == "auto":
        fmt = "json" if text.lstrip()[:1] in ("{", "[") else "csv"
    if fmt == "csv":
        return [
            {"features": {k: _number(v) for k, v in row.items()}}
            for row in csv.DictReader(io.StringIO(text))
        ]
    data = orjson.loads(text)
    if isinstance(data, dict) and "instances" in data:
        data = data["instances"]
    items = data if isinstance(data, list) else [data]
    return [i if ("features" in i or "entity_id" in i) else {"features": i} for i in items]


@app.command()
def predict(
    source: str = typer.Argument("-", help="JSON or CSV file, '-' for stdin"),
    model: str = typer.Option(None, "--model", "-m", help="model name (default: the server's)"),
    entity: list[str] = typer.Option(
        None, "--entity", "-e", help="score an entity's latest features"
    ),
    url: str = typer.Option(
        "http://127.0.0.1:8080", envvar="CONVERGE_PREDICT_URL", help="gateway or predict function"
    ),
    fmt: str = typer.Option("auto", "--format", help="auto, json or csv"),
    as_json: bool = typer.Option(False, "--json", help="print the raw JSON response"),
) -> None:
    """Score rows with a running predict endpoint; prints label, probabilities, cached flag."""
    import httpx
    import orjson

    if entity:
        instances = [{"entity_id": e} for e in entity]
    else:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        try:
            instances = read_instances(text, fmt)
        except (ValueError, TypeError, AttributeError) as exc:
            typer.echo(f"error: cannot read {source}: {exc}", err=True)
            raise typer.Exit(2) from exc
    if not instances:
        typer.echo("error: no rows to score", err=True)
        raise typer.Exit(2)
    body: dict[str, Any] = {"instances": instances}
    if model:
        body["model"] = model
    endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/predict") else "/predict")
    try:
        response = httpx.post(
            endpoint,
            content=orjson.dumps(body),
            headers={"content-type": "application/json"},
            timeout=60.0,
        )
    except httpx.HTTPError as exc:
        typer.echo(f"error: {endpoint}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        typer.echo(f"error: HTTP {response.status_code}: {message}", err=True)
        raise typer.Exit(1)
    result = response.json()
    if as_json:
        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    _table(result)


def _table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    predictions = result["predictions"]
    classes: list[str] = []
    for p in predictions:
        for c in p.get("probabilities") or {}:
            if c not in classes:
                classes.append(c)
    table = Table(title=f"{result['model']} v{result['version']}")
    table.add_column("#", justify="right")
    table.add_column("label")
    for c in classes:
        table.add_column(f"P({c})", justify="right")
    table.add_column("cached")
    for i, p in enumerate(predictions):
        probs = p.get("probabilities") or {}
        label = p["label"]
        table.add_row(
            str(i),
            f"{label:.6g}" if isinstance(label, float) else str(label),
            *[f"{probs[c]:.4f}" if c in probs else "" for c in classes],
            "yes" if p.get("cached") else "no",
        )
    Console().print(table)
