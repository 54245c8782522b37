"""Reloads under load, the light version of the benchmark: five consecutive reloads (one of them a
corrupt artifact) while predict serves an open-loop stream.

Why: a reload must never cost a request (Scenario B), a corrupt artifact must be refused without
touching what is served, and no client may see a version older than one it has already seen.
The benchmark (``bench_reliability.py``) runs the same scenario at 1,000 req/s and compares p99
during the reloads with steady state; this test asserts no latency at all.
"""

from __future__ import annotations

import httpx
import pytest
from _load import CLIENT_LIMITS, httpx_predict, predict_bodies, reload_run
from reliability_support import TOKEN, log_problems, wait_ready

from converge.registry import Registry
from converge.serving.testing import register_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def functions(settings, pool, corpus, start_function):
    mojo, rows = corpus["binomial"]
    await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    # The poll is slow on purpose: the swap must come through the Redis reload channel.
    slow_poll = settings.model_copy(update={"registry_poll_s": 30.0})
    fns = {
        "predict": start_function("predict", slow_poll),
        "reload": start_function("reload", settings),
    }
    await wait_ready(fns["predict"].url)
    return fns


async def register_plan(settings, pool, corpus, kinds: list[str]) -> list[int]:
    """Register one version per kind; ``corrupt`` is the regression MOJO cut in half."""
    versions = []
    for kind in kinds:
        if kind == "corrupt":
            mojo, rows = corpus["regression"]
            mv = await register_model(
                settings, pool, settings.default_model, mojo[: len(mojo) // 2], rows,
                predictions=[{"predict": 0.0}] * len(rows),
            )  # fmt: skip
        else:
            mojo, rows = corpus[kind]
            mv = await register_model(settings, pool, settings.default_model, mojo, rows)
        versions.append(mv.version)
    return versions


def reloader(client: httpx.AsyncClient, name: str):
    async def reload(version: int) -> int:
        r = await client.post("/admin/reload-model", json={"name": name, "version": version})
        return r.status_code

    return reload


async def test_five_reloads_one_corrupt_under_load_answer_only_200(
    functions, settings, pool, corpus
):
    name = settings.default_model
    before = (await Registry(pool).production(name)).version
    kinds = ["regression", "binomial", "corrupt", "regression", "binomial"]
    plan = await register_plan(settings, pool, corpus, kinds)
    # The union of both models' inputs: each model ignores the columns it does not know.
    features = {**corpus["regression"][1][0], **corpus["binomial"][1][0]}
    bodies = predict_bodies([features], "PSA", 3000)
    async with (
        httpx.AsyncClient(
            base_url=functions["predict"].url, timeout=30.0, limits=CLIENT_LIMITS
        ) as predict,
        httpx.AsyncClient(
            base_url=functions["reload"].url, timeout=60.0,
            headers={"authorization": f"Bearer {TOKEN}"},
        ) as admin,
    ):  # fmt: skip
        result = await reload_run(
            httpx_predict(predict, bodies), reloader(admin, name), plan,
            rate=100, duration_s=10.0, steady_s=2.0, gap_s=1.5,
        )  # fmt: skip
    print(result)

    assert [s.status for s in result.steps] == [200, 200, 422, 200, 200]
    assert result.sent > 500
    assert result.non_200 == 0, result.statuses
    good = [v for v, kind in zip(plan, kinds, strict=True) if kind != "corrupt"]
    assert result.versions == [before, *good], "a version was skipped, repeated or corrupt"
    assert result.regressions == 0, "a client saw an older version after a newer one"
    assert all(s.seen is not None for s in result.steps if s.status == 200)
    assert (await Registry(pool).production(name)).version == good[-1]
    for fn in functions.values():
        assert log_problems(fn) == []
