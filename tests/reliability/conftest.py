"""Fixtures for the reliability tests: real function processes against the session's real stack.

The load generators and the fault scenario live in ``benchmarks/_load.py`` so the tests and
``benchmarks/bench_reliability.py`` measure the same thing; this file puts that folder on the path.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from pydantic import SecretStr

from converge.checkout import CORPUS
from converge.serving.testing import FunctionProcess, read_rows, register_model
from converge.settings import Settings
from converge.stack.procs import free_port

from reliability_support import (
    INGEST_TOKEN, PUBLISH_KEY, SOURCE, TOKEN, log_problems, wait_ready,
)  # fmt: skip


@pytest.fixture(scope="module")
def settings(stack_settings: Settings) -> Settings:
    """A model name of this module's own, a short registry poll, the three credentials."""
    return stack_settings.model_copy(
        update={
            "default_model": f"rel-{uuid.uuid4().hex[:8]}",
            "registry_poll_s": 2.0,
            "admin_token": SecretStr(TOKEN),
            "publish_key": SecretStr(PUBLISH_KEY),
            "ingest_token": SecretStr(INGEST_TOKEN),
        }
    )


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[bytes, list[dict]]]:
    """Two corpus models to alternate (binomial, regression), each with 8 validation rows."""
    return {
        name: ((CORPUS / f"{name}.zip").read_bytes(), read_rows(CORPUS / f"{name}.input.csv", 8))
        for name in ("binomial", "regression")
    }


@pytest.fixture(scope="module")
def start_function(tmp_path_factory) -> Iterator[Callable[..., FunctionProcess]]:
    """Start ``functions-framework --target <role>`` processes; all are stopped at module end."""
    started: list[FunctionProcess] = []
    logs = tmp_path_factory.mktemp("functions")

    def start(role: str, settings: Settings, **env: str) -> FunctionProcess:
        name = f"{role}-{len(started)}"
        fn = FunctionProcess(role, SOURCE, settings, free_port(), logs / f"{name}.log")
        fn.env.update(env)
        started.append(fn)
        return fn.start()

    yield start
    for fn in reversed(started):
        fn.stop()


@pytest.fixture(scope="module")
async def functions(settings, pool, corpus, start_function):
    """predict, ingest and reload processes; the model starts with v1 in production. Each must
    end the module without an unhandled exception in its log."""
    mojo, rows = corpus["binomial"]
    await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    fns = {role: start_function(role, settings) for role in ("predict", "ingest", "reload")}
    await wait_ready(fns["predict"].url)
    yield fns
    for fn in fns.values():
        assert log_problems(fn) == [], f"{fn.target} logged an unhandled exception"


@pytest.fixture
async def http(functions) -> AsyncIterator[dict]:
    """One client per process of the requesting module's ``functions`` fixture, by role."""
    import httpx

    clients = {
        role: httpx.AsyncClient(base_url=fn.url, timeout=60.0) for role, fn in functions.items()
    }
    yield clients
    for client in clients.values():
        await client.aclose()
