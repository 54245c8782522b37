"""End-to-end check of a deployed predict function (the chart's ``helm test`` runs it).

It asks the registry for the production version of the default model, sends that version's
validation sample to predict over HTTP, and compares the answers with the predictions the trainer
stored, which came from H2O itself: labels exactly, probabilities within ``TOLERANCE``. A fresh
install with no model yet fails with that reason, not with a timeout.

Run: ``python -m converge.serving.predict_check URL`` with the ``CONVERGE_*`` settings.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx

from converge.settings import Settings, get_settings

TOLERANCE = 1e-9
MAX_ROWS = 32


class CheckFailed(Exception):
    """The deployment does not answer what the trainer saw."""


async def _production(settings: Settings) -> Any:
    from converge.db import create_pool
    from converge.registry import Registry

    pool = await create_pool(settings, min_size=0)
    try:
        mv = await Registry(pool).production(settings.default_model)
    finally:
        await pool.close()
    if mv is None:
        raise CheckFailed(f"model {settings.default_model!r} has no production version yet")
    return mv


def _compare(i: int, got: dict[str, Any], want: dict[str, Any]) -> None:
    label, expected = got.get("label"), want.get("predict")
    if isinstance(expected, int | float) and isinstance(label, int | float):
        same = abs(float(label) - float(expected)) <= TOLERANCE * max(1.0, abs(float(expected)))
    else:
        same = str(label) == str(expected)
    if not same:
        raise CheckFailed(f"row {i}: predict answered {label!r}, the trainer saw {expected!r}")
    for cls, p in (got.get("probabilities") or {}).items():
        # H2O's predict frame names the column of a numeric-looking level "p<level>"
        stored = want.get(cls, want.get(f"p{cls}"))
        if stored is None:
            raise CheckFailed(f"row {i}: the trainer stored no probability for class {cls!r}")
        if not abs(p - float(stored)) <= TOLERANCE:
            raise CheckFailed(f"row {i}: P({cls}) = {p!r}, the trainer saw {stored!r}")


async def check(url: str, settings: Settings | None = None, timeout: float = 120.0) -> str:
    """Raise :class:`CheckFailed` unless ``url`` (predict) answers the trainer's predictions."""
    settings = settings or get_settings()
    mv = await _production(settings)
    sample = mv.validation_sample or {}
    rows, expected = sample.get("rows", [])[:MAX_ROWS], sample.get("predictions", [])[:MAX_ROWS]
    if not rows:
        raise CheckFailed(f"{mv.name} v{mv.version} has no validation sample to check against")
    body = {"model": mv.name, "instances": [{"features": row} for row in rows]}
    deadline = time.monotonic() + timeout  # a scaled-to-zero function starts on this request
    async with httpx.AsyncClient(timeout=30.0) as client:
        while True:
            response = await client.post(url.rstrip("/") + "/predict", json=body)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(2.0)
    if response.status_code != 200:
        raise CheckFailed(f"predict answered {response.status_code}: {response.text[:500]}")
    answer = response.json()
    if answer.get("version") != mv.version:
        raise CheckFailed(f"predict serves v{answer.get('version')}, production is v{mv.version}")
    predictions = answer.get("predictions") or []
    if len(predictions) != len(rows):
        raise CheckFailed(f"{len(rows)} rows sent, {len(predictions)} predictions received")
    for i, (got, want) in enumerate(zip(predictions, expected, strict=True)):
        _compare(i, got, want)
    return f"{mv.name} v{mv.version}: {len(rows)} predictions match the trainer's"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m converge.serving.predict_check PREDICT_URL", file=sys.stderr)
        return 2
    try:
        print(asyncio.run(check(args[0])))
    except CheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - registry or predict unreachable: one line, no traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
