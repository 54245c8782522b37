"""``converge models``: list, promote and roll back registered models through the admin API.

Promotion goes through the admin API on purpose: it runs the same verify-and-validate path as a
reload, so the command line cannot put an unchecked artifact into production.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from converge.cli._app import app

models_app = typer.Typer(no_args_is_help=True, help="List, promote and roll back model versions.")
app.add_typer(models_app, name="models")

_URL = typer.Option("http://127.0.0.1:8080", envvar="CONVERGE_ADMIN_URL", help="gateway or reload function")
_TOKEN = typer.Option(
    "", envvar="CONVERGE_ADMIN_TOKEN", show_default=False,
    help="admin bearer token (default: the local stack's, from stack.env)",
)  # fmt: skip
_JSON = typer.Option(False, "--json", help="print JSON")


def _call(method: str, url: str, path: str, token: str, body: Any = None) -> Any:
    import httpx

    from converge.settings import get_settings

    token = token or get_settings().admin_token.get_secret_value()
    if not token:
        typer.echo("error: no admin token: set CONVERGE_ADMIN_TOKEN or pass --token", err=True)
        raise typer.Exit(2)

    try:
        response = httpx.request(
            method, url.rstrip("/") + path, json=body, timeout=120,
            headers={"authorization": f"Bearer {token}"},
        )  # fmt: skip
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach the admin API at {url} ({exc}); is `converge serve` running?", err=True)
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        typer.echo(f"error: {response.status_code}: {message}", err=True)
        raise typer.Exit(2 if response.status_code < 500 else 1)
    return response.json()


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, box=None)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console().print(table)


@models_app.command("list")
def list_models(url: str = _URL, token: str = _TOKEN, as_json: bool = _JSON) -> None:
    """Every model with its number of versions and the version in production."""
    rows = _call("GET", url, "/admin/models", token)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _table(rows, ["name", "versions", "latest_version", "production_version"])


@models_app.command("versions")
def versions(name: str, url: str = _URL, token: str = _TOKEN, as_json: bool = _JSON) -> None:
    """The versions of one model, newest first, with stage and metrics."""
    rows = _call("GET", url, f"/admin/models/{name}/versions", token)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        metrics = row.get("metrics") or {}
        row["metrics"] = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))
    _table(rows, ["version", "stage", "created_at", "sha256", "metrics"])


@models_app.command("promote")
def promote(
    name: str,
    version: int,
    canary: float = typer.Option(
        None, "--canary", min=0.01, max=99.99, help="send this percent of traffic to the version first"
    ),
    shadow: bool = typer.Option(False, "--shadow", help="score it beside production, answer with production"),
    max_error_rate: float = typer.Option(None, help="rollout: roll back above this failure rate"),
    max_latency_ratio: float = typer.Option(None, help="rollout: roll back above this x production's time"),
    max_drift: float = typer.Option(None, help="rollout: roll back above this prediction gap"),
    min_requests: int = typer.Option(None, help="rollout: promote after this many good answers"),
    url: str = _URL,
    token: str = _TOKEN,
    as_json: bool = _JSON,
) -> None:
    """Verify, validate and promote a version (the reload path); with --canary or --shadow, try it
    first and let the thresholds promote or roll it back."""
    if canary is None and not shadow:
        result = _call("POST", url, f"/admin/models/{name}/promote", token, {"version": version})
        typer.echo(json.dumps(result, indent=2) if as_json else f"{name} v{result['version']} is in production")
        return
    if canary is not None and shadow:
        typer.echo("error: --canary and --shadow: choose one", err=True)
        raise typer.Exit(2)
    limits = {
        "max_error_rate": max_error_rate, "max_latency_ratio": max_latency_ratio,
        "max_drift": max_drift, "min_requests": min_requests,
    }  # fmt: skip
    body = {
        "version": version,
        "mode": "shadow" if shadow else "canary",
        "thresholds": {k: v for k, v in limits.items() if v is not None},
    }
    if canary is not None:
        body["percent"] = canary
    result = _call("POST", url, f"/admin/models/{name}/rollout", token, body)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        share = "shadow" if shadow else f"canary at {result['percent']:g}%"
        typer.echo(f"{name} v{version}: {share} against v{result['baseline']}; `converge models rollout {name}` follows it")


@models_app.command("rollout")
def rollout(
    name: str,
    stop: bool = typer.Option(False, "--stop", help="stop the rollout; production keeps answering"),
    url: str = _URL,
    token: str = _TOKEN,
    as_json: bool = _JSON,
) -> None:
    """The latest canary or shadow rollout of a model: state, reason, per-version numbers."""
    result = _call("DELETE" if stop else "GET", url, f"/admin/models/{name}/rollout", token)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"{name} v{result['candidate']} ({result['mode']}, {result['percent']:g}%) against "
        f"v{result['baseline']}: {result['state']}" + (f" ({result['reason']})" if result.get("reason") else "")
    )


@models_app.command("rollback")
def rollback(name: str, url: str = _URL, token: str = _TOKEN, as_json: bool = _JSON) -> None:
    """Put the previous production version back."""
    result = _call("POST", url, f"/admin/models/{name}/rollback", token)
    typer.echo(json.dumps(result, indent=2) if as_json else f"{name} v{result.get('version')} is in production")


@models_app.command("publish")
def publish(
    mojo: Path = typer.Argument(..., help="the MOJO zip (from H2O Flow, h2o.download_mojo, AutoML...)"),
    name: str = typer.Option(..., "--name", help="model name in the registry"),
    validation: Path = typer.Option(
        None, "--validation", help="CSV of rows (header: feature names) to validate the MOJO on"
    ),
    description: str = typer.Option(None, "--description", help="what this model is"),
    url: str = _URL,
    token: str = _TOKEN,
    as_json: bool = _JSON,
) -> None:
    """Register a MOJO trained elsewhere as the next version; the reload path validates and
    promotes it, as it does for a trained model."""
    import base64
    import zipfile

    from converge.cli.serve import read_instances

    if not mojo.is_file() or not zipfile.is_zipfile(mojo):
        typer.echo(f"error: {mojo}: not a readable zip file (a MOJO is a zip)", err=True)
        raise typer.Exit(2)
    body: dict[str, Any] = {"mojo": base64.b64encode(mojo.read_bytes()).decode()}
    if validation is not None:
        try:
            rows = [i["features"] for i in read_instances(validation.read_text(), "csv")]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            typer.echo(f"error: {validation}: cannot read the CSV ({exc})", err=True)
            raise typer.Exit(2) from None
        if not rows:
            typer.echo(f"error: {validation}: no rows", err=True)
            raise typer.Exit(2)
        body["validation_rows"] = rows
    if description:
        body["description"] = description
    result = _call("POST", url, f"/admin/models/{quote(name, safe='')}/publish", token, body)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    delivered = "announced" if result["event"].get("delivered") else "NOT announced (promote it by hand)"
    typer.echo(
        f"{result['name']} v{result['version']} registered ({result['stage']}), sha256 {result['sha256'][:12]}…; "
        f"validation: {result['validation']['rows']} rows, answers {result['validation']['source']}; {delivered}"
    )
