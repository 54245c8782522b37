"""The predict function as the benchmarks run it: models registered and promoted, the function
started exactly as the image starts it, and request bodies that miss (or hit) the cache."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from converge.checkout import REPO
from converge.db import create_pool
from converge.serving.testing import FunctionProcess, migrate, register_model
from converge.settings import Settings
from converge.stack.procs import free_port


async def prepare(settings: Settings, models: dict[str, tuple[bytes, list[dict]]]) -> None:
    await migrate(settings)
    pool = await create_pool(settings, min_size=0)
    try:
        for name, (mojo, rows) in models.items():
            await register_model(settings, pool, name, mojo, rows[:20], promote=True)
    finally:
        await pool.close()


def start_predict(settings: Settings, workdir: Path, mode: str) -> FunctionProcess:
    """``mode``: a scoring mode, or ``<mode>+ff`` for the app behind functions-framework's wrapper."""
    import httpx

    scoring, _, server = mode.partition("+")
    fn = FunctionProcess(
        "predict",
        REPO / "functions" / "main.py",
        settings.model_copy(update={"scoring_mode": scoring}),
        free_port(),
        workdir / f"predict-{scoring}-{server or 'plain'}.log",
        wrapper="functions-framework" if server == "ff" else None,
    )
    fn.start()
    deadline = time.monotonic() + 120
    while httpx.get(fn.url + "/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("predict never became ready")
        time.sleep(0.2)
    return fn


class Bodies:
    """Unique features per request (cache misses) or one repeated body (hits)."""

    def __init__(self, rows: list[dict], numeric: str, model: str | None = None) -> None:
        self.rows = rows
        self.numeric = numeric
        self.extra = {"model": model} if model else {}
        self.counter = int(time.time() * 1000) % 10_000_000 * 1000

    def _row(self, i: int) -> dict:
        self.counter += 1
        row = dict(self.rows[i % len(self.rows)])
        row[self.numeric] = float(self.counter) / 1000.0
        return row

    def misses(self, n: int, batch: int = 1) -> list[bytes]:
        out = []
        for i in range(n):
            if batch == 1:
                out.append(orjson.dumps({**self.extra, "features": self._row(i)}))
            else:
                instances = [{"features": self._row(i * batch + j)} for j in range(batch)]
                out.append(orjson.dumps({**self.extra, "instances": instances}))
        return out

    def hits(self, n: int, batch: int = 1) -> list[bytes]:
        body = self.misses(1, batch)[0]
        return [body] * n


class V2Bodies(Bodies):
    """One V2 infer body per request: a tensor per feature, a fresh number so nothing is cached
    (rows with a missing number are left out: V2's FP64 tensors have no missing value)."""

    def __init__(self, model, rows: list[dict]) -> None:
        self.features = model.feature_names
        self.categorical = {n for n in self.features if model.domains.get(n)}
        numbers = [n for n in self.features if n not in self.categorical]
        super().__init__([r for r in rows if all(r.get(n) is not None for n in numbers)], numbers[0])

    def _value(self, name: str, value):
        if name in self.categorical:
            return "" if value is None else str(value).removesuffix(".0")
        return float(value)

    def v2(self, n: int) -> list[bytes]:
        out = []
        for i in range(n):
            row = self._row(i)
            inputs = [
                {
                    "name": name,
                    "shape": [1],
                    "datatype": "BYTES" if name in self.categorical else "FP64",
                    "data": [self._value(name, row.get(name))],
                }
                for name in self.features
            ]
            out.append(orjson.dumps({"inputs": inputs}))
        return out

    def native(self, n: int) -> list[bytes]:
        return [
            orjson.dumps({"features": {k: self._value(k, v) for k, v in self._row(i).items() if k in self.features}})
            for i in range(n)
        ]
