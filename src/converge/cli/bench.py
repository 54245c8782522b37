"""``converge bench``: run the benchmarks; each one rewrites its own section of BENCHMARKS.md."""

from __future__ import annotations

import subprocess
import sys

import typer

from converge.checkout import REPO
from converge.cli._app import app



@app.command()
def bench(
    only: list[str] = typer.Argument(None, help="benchmark names, e.g. mojo predict (default: all)"),
) -> None:
    """Run benchmarks/bench_*.py and update BENCHMARKS.md."""
    folder = REPO / "benchmarks"
    if not folder.is_dir():
        typer.echo("error: benchmarks/ not found; run this from a source checkout", err=True)
        raise typer.Exit(2)
    scripts = sorted(folder.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in only]
        if not scripts:
            typer.echo(f"error: no benchmark named {', '.join(only)}", err=True)
            raise typer.Exit(2)
    failed = []
    for script in scripts:
        typer.secho(f"==> {script.name}", bold=True)
        if subprocess.call([sys.executable, str(script)], cwd=REPO) != 0:
            failed.append(script.name)
    if failed:
        typer.echo(f"error: failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
