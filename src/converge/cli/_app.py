"""The root Typer app; command modules register themselves on it."""

import typer

app = typer.Typer(
    name="converge",
    no_args_is_help=True,
    add_completion=False,
    help="H2O-3 models as scale-to-zero functions: local stack, training, serving.",
)


@app.callback()
def _root() -> None:
    """converge: H2O-3 models as scale-to-zero functions."""
