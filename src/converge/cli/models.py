"""``converge models``: list, promote and roll back registered models through the admin API.

Promotion goes through the admin API on purpose: it runs the same verify-and-validate path as a
reload, so the command line cannot put an unchecked artifact into production.
"""

from __future__ import annotations

import json
from typing import Any

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
def promote(name: str, version: int, url: str = _URL, token: str = _TOKEN, as_json: bool = _JSON) -> None:
    """Verify, validate and promote a version (the reload path); replicas swap to it."""
    result = _call("POST", url, f"/admin/models/{name}/promote", token, {"version": version})
    typer.echo(json.dumps(result, indent=2) if as_json else f"{name} v{result['version']} is in production")


@models_app.command("rollback")
def rollback(name: str, url: str = _URL, token: str = _TOKEN, as_json: bool = _JSON) -> None:
    """Put the previous production version back."""
    result = _call("POST", url, f"/admin/models/{name}/rollback", token)
    typer.echo(json.dumps(result, indent=2) if as_json else f"{name} v{result.get('version')} is in production")
