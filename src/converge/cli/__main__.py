"""``python -m converge.cli``: the same as the ``converge`` command."""

from converge.cli import app

app()
