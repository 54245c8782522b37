"""Fixtures shared by the training tests; their support code is in training_support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from converge.settings import Settings


from training_support import EventSink, demand_frame, settings_env  # noqa: E402


@pytest.fixture(scope="module")
def sink() -> Iterator[EventSink]:
    s = EventSink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def train_env(
    stack_settings: Settings, h2o_server: Any, s3_server: Any, sink: EventSink
) -> dict[str, str]:
    from converge import migrations

    migrations.upgrade(stack_settings)
    env = settings_env(stack_settings)
    env["CONVERGE_BROKER_URL"] = sink.url
    return env


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("training") / "demand.parquet"
    demand_frame().to_parquet(path)
    return path
