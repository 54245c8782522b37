"""Fixtures for the deploy checks (tests/deploy): the chart rendered once per value set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib puts no test directory on sys.path; the helpers live next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from deploy_support import CHART, VALUE_SETS, Rendered, helm, render  # noqa: E402


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    return {name: render(values, name) for name, values in VALUE_SETS.items()}


