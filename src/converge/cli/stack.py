"""``converge up``, ``converge down``, ``converge status``: the local stack of real services."""

from __future__ import annotations

import json
import shlex
from typing import Any

import typer

from converge.cli._app import app


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _local_stack() -> Any:
    """The stack for this machine's settings; refuses a backend ``up``/``down`` cannot manage."""
    from converge.settings import Settings
    from converge.stack.backend import checked_choice
    from converge.stack.stack import Stack

    settings = Settings()
    wanted = checked_choice(settings.stack_backend)
    # `auto` means local here, Docker or not: containers live only as long as a test session.
    if wanted == "testcontainers":
        raise RuntimeError(
            "the testcontainers backend lives only as long as a test session; "
            "`converge up` runs local processes: set CONVERGE_STACK_BACKEND=local or auto"
        )
    return Stack(settings)


def _line(info: dict[str, Any]) -> str:
    state = "running" if info["running"] else "stopped"
    where = info["url"] or "-"
    pid = f"pid {info['pid']}" if info["pid"] else ""
    return f"  {info['name']:<10} {state:<8} {where}  {pid}".rstrip()


@app.command()
def up(
    as_json: bool = typer.Option(False, "--json", help="print services and variables as JSON"),
    no_h2o: bool = typer.Option(False, "--no-h2o", help="skip the H2O JVM (heavy; training only)"),
) -> None:
    """Start Postgres, PgBouncer, Redis, S3 and H2O on 127.0.0.1 (reusing what already runs)."""
    try:
        stack = _local_stack()
        started = stack.up(h2o=not no_h2o)
        env = stack.env()
        services = [
            dict(s.describe(), reused=s.reused or s not in started)
            for s in stack.services.values()
            if s in started or s.is_running()
        ]
    except KeyboardInterrupt:
        raise _fail("interrupted") from None
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    if as_json:
        typer.echo(json.dumps({"services": services, "env": env, "env_file": str(stack.env_file)}))
        return
    for info in services:
        typer.echo(_line(info) + ("  (reused)" if info["reused"] else ""))
    typer.echo(f"\n# {stack.env_file}")
    for key, value in sorted(env.items()):
        typer.echo(f"export {key}={shlex.quote(value)}")


@app.command()
def down() -> None:
    """Stop every service of the local stack; data stays in the state directory."""
    try:
        stack = _local_stack()
        was = [s.name for s in stack.running()]
        stack.down()
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    typer.echo("stopped: " + (", ".join(was) if was else "nothing was running"))


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="print the status as JSON"),
) -> None:
    """Show which services of the local stack run, and where."""
    try:
        stack = _local_stack()
        services = stack.status()
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    if as_json:
        typer.echo(json.dumps({"state_dir": str(stack.state_dir), "services": services}))
        return
    typer.echo(f"state dir: {stack.state_dir}")
    for info in services:
        typer.echo(_line(info))
