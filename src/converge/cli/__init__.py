"""The ``converge`` command line. Each submodule adds the commands of one concept."""

from converge.cli._app import app

# Importing a module registers its commands on `app`.
# (add one line per command module, keep them sorted)
from converge.cli import bench  # noqa: E402,F401
from converge.cli import db  # noqa: E402,F401
from converge.cli import demo  # noqa: E402,F401
from converge.cli import ingest  # noqa: E402,F401
from converge.cli import mage  # noqa: E402,F401
from converge.cli import models  # noqa: E402,F401
from converge.cli import serve  # noqa: E402,F401
from converge.cli import stack  # noqa: E402,F401
from converge.cli import train  # noqa: E402,F401

__all__ = ["app"]
