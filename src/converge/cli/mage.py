"""``converge mage``: Mage's UI on the training project and on converge's own Mage database.

``converge train`` keeps Mage's run database and block outputs in ``<state_dir>/mage``; a bare
``mage start pipelines`` would open a new, empty database in the project's default directory
instead, without the runs ``converge train`` made. This command starts Mage on the same directory.
"""

from __future__ import annotations

import os

import typer

from converge.cli._app import app

# Mage makes this owner account on its first start unless DEFAULT_OWNER_* say otherwise.
MAGE_DEFAULT_OWNER = ("admin@admin.com", "admin")


@app.command()
def mage(
    port: int = typer.Option(6789, "--port", help="port of Mage's UI"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
) -> None:
    """Open Mage's UI on the training project, with the runs, triggers and logs converge made."""
    from converge.training import runner

    try:
        mage_bin = runner.training_python().parent / "mage"
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not mage_bin.exists():
        typer.echo(f"error: {mage_bin} does not exist: the training environment lacks Mage", err=True)
        raise typer.Exit(2)
    data_dir = runner.default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    project = runner.default_project()
    email = os.environ.get("DEFAULT_OWNER_EMAIL") or MAGE_DEFAULT_OWNER[0]
    password = "$DEFAULT_OWNER_PASSWORD" if os.environ.get("DEFAULT_OWNER_PASSWORD") else "admin"
    typer.echo(
        f"Mage on http://{host}:{port} (project {project}, database {data_dir})\n"
        f"sign in as {email} with password {password}; change it under Settings > Users",
        err=True,
    )
    env = {**os.environ, "MAGE_DATA_DIR": str(data_dir)}
    cmd = [str(mage_bin), "start", str(project), "--host", host, "--port", str(port)]
    os.execve(cmd[0], cmd, env)  # Mage in the foreground; Ctrl-C stops it
