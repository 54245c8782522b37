"""Fixtures for the deploy checks (tests/deploy): the chart rendered once per value set."""

from __future__ import annotations


import pytest


from deploy_support import CHART, VALUE_SETS, Rendered, helm, render  # noqa: E402


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    return {name: render(values, name) for name, values in VALUE_SETS.items()}


