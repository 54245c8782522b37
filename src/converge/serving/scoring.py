"""Scoring off the event loop, with concurrent requests merged into one vectorised call.

Three modes, chosen per process (``benchmarks/bench_predict.py`` measures them; ``inline`` is the
default because it costs the least CPU per request: a thread hop plus the GIL hand-over between
the loop and a scoring thread cost more than a micro-batched tree walk on the loop):

- ``offload``: every request is scored in a thread pool sized to the cores;
- ``inline``: requests of at most ``inline_max_rows`` rows are scored on the loop, and those
  that reach the scorer in the same loop iteration are merged into one call (no thread hop, no
  GIL hand-over between the loop and a scoring thread); larger requests are offloaded;
- ``batch``: requests that arrive while the pool is busy are merged into one call. An idle server
  scores a request at once (no batching window, so no added latency); under load each pool slot
  takes everything that queued up meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from converge.errors import InvalidInput
from converge.serving.holder import LoadedModel

Record = Mapping[str, Any]
MODES = ("offload", "inline", "batch")


def _plain(value: Any) -> Any:
    """NumPy scalars and NaN to JSON-able Python values."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def h2o_booleans(model: Any, records: Sequence[Record]) -> Sequence[Record]:
    """JSON booleans as H2O's parser saw them in training: levels "True"/"False", or 1/0 numbers.

    genmodel itself accepts only strings and numbers, so without this a feature stored as a JSON
    boolean could be trained on but never scored.
    """
    if not any(isinstance(v, bool) for r in records for v in r.values()):
        return records
    domains = getattr(model, "domains", {}) or {}
    return [
        {k: (str(v) if domains.get(k) else float(v)) if isinstance(v, bool) else v for k, v in r.items()}
        for r in records
    ]


# Up to this many rows (a few single-row requests merged by the inline scorer), one call per row
# is cheaper than one batch call where the model has a one-row path: the batch path's fixed cost
# (NumPy arrays, 50-120 us) is more than two or three rows' scoring; even at four rows.
# Measured on the corpus GBM, GLM+GBM and StackedEnsemble models (2 rows: 9 against 14 us,
# 27 against 51, 77 against 157).
ONE_BY_ONE_MAX_ROWS = 3
#: the same for a model that scores a record in one compiled call (a one-row plan): one call per
#: record beats one NumPy batch up to about 32 rows (leader, GBM and DRF of benchmarks/bench_mojo.py)
ONE_CALL_MAX_ROWS = 32


def _has_row_path(model: Any) -> bool:
    scorer = getattr(getattr(model, "backend", None), "scorer", None)
    check = getattr(scorer, "rows_without_numpy", None)
    return bool(check is not None and check())


def _one_by_one_max_rows(model: Any) -> int:
    """Up to how many records a request is scored record by record rather than as a batch."""
    has_plan = getattr(getattr(model, "backend", None), "has_row_plan", None)
    if has_plan is not None and has_plan():
        return ONE_CALL_MAX_ROWS
    return ONE_BY_ONE_MAX_ROWS if _has_row_path(model) else 1


def score_rows(model: Any, records: Sequence[Record]) -> list[dict[str, Any]]:
    """Raw rows (``predict`` + one column per class) from whichever API the model offers."""
    records = h2o_booleans(model, records)
    fast = getattr(model, "predict_records", None)
    if fast is not None:
        if 1 < len(records) <= _one_by_one_max_rows(model):
            return [out for record in records for out in fast([record])]
        return list(fast(list(records)))
    frame = model.predict(list(records))
    if hasattr(frame, "to_dict"):
        return frame.to_dict(orient="records")
    return list(frame)


def to_prediction(
    row: Mapping[str, Any], classes: Sequence[tuple[str, str]] | None
) -> dict[str, Any]:
    """A row as the wire shape of :class:`~converge.contracts.Prediction` (without ``cached``);
    probabilities are keyed by class label."""
    label = _plain(row.get("predict"))
    if classes:
        probabilities = {c: float(_plain(row[col])) for c, col in classes if col in row}
        return {"label": None if label is None else str(label), "probabilities": probabilities}
    if len(row) > 1 or "predict" not in row:  # a cluster, anomaly score, components...
        outputs = {name: _plain(v) for name, v in row.items()}
        return {"label": next(iter(outputs.values()), None), "probabilities": None, "outputs": outputs}
    return {"label": label, "probabilities": None}


def predict_rows(loaded: LoadedModel, records: Sequence[Record]) -> list[dict[str, Any]]:
    classes = loaded.classes
    return [to_prediction(row, classes) for row in score_rows(loaded.model, records)]


#: what a request may ask for besides the answer: its field -> the model's method
EXTRAS = {"explain": "contributions", "leaf_assignment": "leaf_assignment",
          "leaf_node_ids": "leaf_node_ids", "calibrated": "calibrated_probabilities",
          "reconstruct": "reconstruction"}


def extra_rows(loaded: LoadedModel, records: Sequence[Record], field: str) -> list[dict[str, Any]]:
    """Per row, SHAP contributions (``explain``), each tree's leaf path (``leaf_assignment``) or
    leaf id (``leaf_node_ids``), calibrated probabilities (``calibrated``) or a GLRM's
    reconstruction (``reconstruct``); a model that has
    none is the request's mistake (422 naming the field), not a fault."""
    from converge.mojo import UnsupportedMojoError

    method = getattr(loaded.model, EXTRAS[field], None)
    try:
        if method is None:
            raise UnsupportedMojoError(f"a {type(loaded.model).__name__} has no {EXTRAS[field]}")
        return method(list(h2o_booleans(loaded.model, records)))
    except UnsupportedMojoError as exc:
        raise InvalidInput(f"{field}: {loaded.name} v{loaded.version} cannot answer it ({exc})") from None


class _Batcher:
    """Per-model queue; at most ``slots`` vectorised calls in flight."""

    def __init__(self, scorer: Scorer, loaded: LoadedModel) -> None:
        self.scorer = scorer
        self.loaded = loaded
        self.pending: list[tuple[Sequence[Record], asyncio.Future[list[dict[str, Any]]]]] = []
        self.in_flight = 0

    def submit(self, records: Sequence[Record]) -> asyncio.Future[list[dict[str, Any]]]:
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.pending.append((records, future))
        self._kick()
        return future

    def _kick(self) -> None:
        while self.pending and self.in_flight < self.scorer.workers:
            batch, rows = [], 0
            while self.pending and (
                not batch or rows + len(self.pending[0][0]) <= self.scorer.max_batch_rows
            ):
                item = self.pending.pop(0)
                batch.append(item)
                rows += len(item[0])
            self.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self.scorer._tasks.add(task)
            task.add_done_callback(self.scorer._tasks.discard)

    async def _run(self, batch: list[tuple[Sequence[Record], asyncio.Future[Any]]]) -> None:
        try:
            flat = [r for records, _ in batch for r in records]
            try:
                out = await self.scorer._in_pool(predict_rows, self.loaded, flat)
            except Exception:
                if len(batch) == 1:
                    raise
                for records, future in batch:  # one bad request must not fail its neighbours
                    _resolve(future, await self.scorer._in_pool(_attempt, self.loaded, records))
                return
            _hand_out(batch, out)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self.in_flight -= 1
            self._kick()


def _attempt(loaded: LoadedModel, records: Sequence[Record]) -> tuple[Any, BaseException | None]:
    """One request scored on its own after its merged batch failed: its rows, or its error."""
    try:
        return predict_rows(loaded, records), None
    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
        return None, exc


def _resolve(future: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]) -> None:
    if not future.done():
        result, error = outcome
        future.set_exception(error) if error is not None else future.set_result(result)


def _hand_out(batch: list[tuple[Sequence[Record], asyncio.Future[Any]]], out: list[Any]) -> None:
    """Each request's share of a merged batch's answers, in order."""
    start = 0
    for records, future in batch:
        if not future.done():
            future.set_result(out[start : start + len(records)])
        start += len(records)


class Scorer:
    """Scores rows with a loaded model without blocking the event loop for long."""

    def __init__(
        self,
        mode: str = "inline",
        *,
        workers: int | None = None,
        inline_max_rows: int = 16,
        max_batch_rows: int = 4096,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.inline_max_rows = inline_max_rows
        self.max_batch_rows = max_batch_rows
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="score")
        self._batchers: dict[int, _Batcher] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inline_pending: dict[int, tuple[LoadedModel, list[Any]]] = {}

    async def _in_pool(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def extras(self, loaded: LoadedModel, records: Sequence[Record], field: str) -> list[dict[str, Any]]:
        """:func:`extra_rows` off the event loop (SHAP takes milliseconds per row and tree
        depth: never inline)."""
        return await self._in_pool(extra_rows, loaded, records, field)

    async def score(self, loaded: LoadedModel, records: Sequence[Record]) -> list[dict[str, Any]]:
        if self.mode == "inline" and len(records) <= self.inline_max_rows:
            return await self._inline(loaded, records)
        if self.mode == "batch" and len(records) < self.max_batch_rows:
            batcher = self._batchers.get(id(loaded))
            if batcher is None or batcher.loaded is not loaded:
                # A new model object gets a new queue; the old one drains and is dropped.
                self._batchers = {
                    k: b for k, b in self._batchers.items() if b.pending or b.in_flight
                }
                batcher = self._batchers[id(loaded)] = _Batcher(self, loaded)
            return await batcher.submit(records)
        return await self._in_pool(predict_rows, loaded, records)

    def _inline(
        self, loaded: LoadedModel, records: Sequence[Record]
    ) -> asyncio.Future[list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        pending = self._inline_pending.setdefault(id(loaded), (loaded, []))[1]
        pending.append((records, future))
        if len(pending) == 1:
            loop.call_soon(self._flush_inline, id(loaded))
        return future

    def _flush_inline(self, key: int) -> None:
        loaded, batch = self._inline_pending.pop(key)
        flat = [r for records, _ in batch for r in records]
        try:
            out = predict_rows(loaded, flat)
        except Exception:  # noqa: BLE001 - retried per request below
            for records, future in batch:  # one bad request must not fail its neighbours
                _resolve(future, _attempt(loaded, records))
            return
        _hand_out(batch, out)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
