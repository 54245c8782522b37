"""``converge migrate``: bring the database schema to the newest (or a given) revision."""

from __future__ import annotations

import typer

from converge.cli._app import app


@app.command()
def migrate(
    revision: str = typer.Option("head", "--revision", "-r", help="target revision"),
    downgrade: bool = typer.Option(False, "--downgrade", help="go down to --revision instead"),
    show: bool = typer.Option(False, "--show", help="print the current revision and exit"),
) -> None:
    """Run the Alembic migrations against CONVERGE_DATABASE_URL (PgBouncer is fine)."""
    from converge import migrations
    from converge.settings import get_settings

    settings = get_settings()
    try:
        if show:
            now = migrations.current(settings) or "(empty)"
            typer.echo(f"current: {now}  head: {migrations.head()}")
            return
        if downgrade:
            if revision == "head":
                typer.echo("error: --downgrade needs --revision (e.g. base)", err=True)
                raise typer.Exit(2)
            now = migrations.downgrade(settings, revision)
        else:
            now = migrations.upgrade(settings, revision)
    except typer.Exit:
        raise
    except Exception as exc:  # one line for the operator, not a traceback
        typer.echo(f"error: migration failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"database at revision {now or '(empty)'}")
