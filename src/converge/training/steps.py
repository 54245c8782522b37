"""The steps of the Mage training pipelines, one function per block, so the blocks stay one line.

Mage hands every block its pipeline variables as ``kwargs`` (typed from the pipeline's
``metadata.yaml``, or strings when typed into the UI); :class:`RunOptions` reads them once.
The dynamic block returns ``[items, metadata]``: one item per split (or per segment and split),
and Mage runs one child block per item, in parallel when the runner allows.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from converge.errors import InvalidInput
from converge.settings import Settings, get_settings
from converge.training import dataset, mage_run_state, splits
from converge.training.trainer import ENTITY_COLUMN, TIME_COLUMN, TrainConfig

# Every block imports this module: the process running it writes no run state into the project.
mage_run_state.keep_out_of_project()

_TRUE = {"1", "true", "yes", "on"}


def _none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    return value


def _json(value: Any, default: Any) -> Any:
    value = _none(value)
    if value is None:
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"not valid JSON: {value[:80]!r}") from exc
    return value


def _list(value: Any) -> list[str]:
    value = (
        _json(value, [])
        if isinstance(value, str) and value.strip().startswith("[")
        else _none(value)
    )
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


@dataclass(frozen=True)
class RunOptions:
    """Pipeline variables, parsed and checked."""

    model_name: str = "demo"
    target: str = "demand"
    estimator: str = "gbm"
    estimator_params: dict[str, Any] = field(default_factory=dict)
    problem: str = "auto"
    max_models: int = 5
    n_splits: int = 6
    period: str = "month"
    window: str = "expanding"
    train_periods: int | None = None
    gap_periods: int = 0
    as_of: datetime | None = None
    segment: str | None = None
    exclude: tuple[str, ...] = ()
    training_file: str | None = None
    split_plan: list[dict[str, Any]] | None = None
    validation_rows: int = 50
    run_id: str = ""
    result_path: str | None = None
    publish: bool = True

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> RunOptions:
        get = kwargs.get
        as_of = _none(get("as_of"))
        if isinstance(as_of, str):
            as_of = datetime.fromisoformat(as_of)
        if isinstance(as_of, datetime) and as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        train_periods = _none(get("train_periods"))
        opts = cls(
            model_name=str(_none(get("model_name")) or "demo"),
            target=str(_none(get("target")) or "demand"),
            estimator=str(_none(get("estimator")) or "gbm").lower(),
            estimator_params=dict(_json(get("estimator_params"), {})),
            problem=str(_none(get("problem")) or "auto"),
            max_models=int(_none(get("max_models")) or 5),
            n_splits=int(_none(get("n_splits")) or 6),
            period=str(_none(get("period")) or "month"),
            window=str(_none(get("window")) or "expanding"),
            train_periods=None if train_periods is None else int(train_periods),
            gap_periods=int(_none(get("gap_periods")) or 0),
            as_of=as_of,
            segment=_none(get("segment")),
            exclude=tuple(_list(get("exclude"))),
            training_file=_none(get("training_file")),
            split_plan=_json(get("split_plan"), None),
            validation_rows=int(_none(get("validation_rows")) or 50),
            run_id=run_id_of(kwargs),
            result_path=_none(get("result_path")),
            publish=str(
                _none(get("publish")) if _none(get("publish")) is not None else "true"
            ).lower()
            in _TRUE,
        )
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", opts.model_name) or len(opts.model_name) > 48:
            raise InvalidInput(
                f"model_name {opts.model_name!r}: lowercase letters, digits, '.', '_', '-'"
            )
        return opts

    def cut_off(self, frame: pd.DataFrame) -> int:
        """Exclusive end of the data used, in epoch ms: ``as_of`` or just after the newest row."""
        if self.as_of is not None:
            return splits.to_ms(self.as_of)
        return int(frame[TIME_COLUMN].max()) + 1

    def train_config(self, frame: pd.DataFrame) -> TrainConfig:
        if self.target not in frame.columns:
            raise InvalidInput(
                f"target column {self.target!r} is not in the training set ({sorted(frame.columns)[:20]})"
            )
        skip = {ENTITY_COLUMN, TIME_COLUMN, self.target, *self.exclude}
        if self.segment:
            skip.add(self.segment)
        features = tuple(c for c in frame.columns if c not in skip)
        return TrainConfig(
            target=self.target,
            features=features,
            estimator=self.estimator,
            params=self.estimator_params,
            problem=self.problem,  # type: ignore[arg-type]
            max_models=self.max_models,
        )


def run_id_of(kwargs: dict[str, Any]) -> str:
    """The lineage run id: Mage's own pipeline run (``<pipeline>-<run id>``, the run the UI shows).

    Only a block run by hand in the editor has no pipeline run; it gets ``editor-<random>``.
    """
    explicit = _none(kwargs.get("run_id"))
    if explicit is not None:
        return str(explicit)
    run = _none(kwargs.get("pipeline_run_id"))
    if run is not None:
        return f"{_none(kwargs.get('pipeline_uuid')) or 'pipeline'}-{run}"
    return f"editor-{uuid.uuid4().hex[:10]}"


def slug(value: Any) -> str:
    """A segment value as a model-name and block-uuid safe word."""
    text = re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")
    return text or "blank"


def load(kwargs: dict[str, Any], settings: Settings | None = None) -> pd.DataFrame:
    """The training set: the feature store as of the cut-off, or ``training_file``."""
    opts = RunOptions.from_kwargs(kwargs)
    settings = settings or get_settings()
    if opts.training_file:
        frame = dataset.from_file(opts.training_file)
        if opts.as_of is not None:
            frame = frame[frame[TIME_COLUMN] < splits.to_ms(opts.as_of)].reset_index(drop=True)
    else:
        frame = dataset.from_feature_store(settings, opts.as_of or datetime.now(UTC))
    if opts.target in frame.columns:
        # A row without a label teaches nothing, and on its way to H2O a missing string label
        # would become a class of its own ("<NA>").
        frame = frame[frame[opts.target].notna()].reset_index(drop=True)
    if frame.empty:
        raise splits.EmptySplitError(
            "the training set is empty: nothing was ingested before the cut-off"
        )
    opts.train_config(frame)  # fail here, before any H2O work, if target or features are wrong
    return frame


def plan_for(frame: pd.DataFrame, opts: RunOptions) -> list[splits.Split]:
    """The split plan: given explicitly (``split_plan``) or walk-forward by calendar period."""
    times = frame[TIME_COLUMN].to_numpy(dtype=np.int64)
    if opts.split_plan:
        plan = [splits.Split.from_dict({"index": i, **s}) for i, s in enumerate(opts.split_plan)]
    else:
        plan = splits.walk_forward(
            times,
            n_splits=opts.n_splits,
            period=opts.period,  # type: ignore[arg-type]
            window=opts.window,  # type: ignore[arg-type]
            train_periods=opts.train_periods,
            gap_periods=opts.gap_periods,
            cut_off=datetime.fromtimestamp(opts.cut_off(frame) / 1000, tz=UTC),
        )
    return plan


def plan(frame: pd.DataFrame, kwargs: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Dynamic block output ``[items, metadata]``: one item per split, each proven leak-free."""
    opts = RunOptions.from_kwargs(kwargs)
    times = frame[TIME_COLUMN].to_numpy(dtype=np.int64)
    if opts.segment:
        if opts.segment not in frame.columns:
            raise InvalidInput(f"segment column {opts.segment!r} is not in the training set")
        values = sorted(frame[opts.segment].dropna().unique().tolist(), key=str)
        if not values:
            raise splits.EmptySplitError(f"segment column {opts.segment!r} has no values")
        items, metadata = [], []
        for value in values:
            rows = (frame[opts.segment] == value).to_numpy()
            seg_plan = plan_for(frame[rows], opts)
            try:
                splits.check_plan(seg_plan, times[rows])
            except splits.SplitError as exc:
                raise (
                    type(exc)(f"segment {value!r}: {exc}")
                    if not isinstance(exc, splits.LeakageError)
                    else exc
                )
            for s in seg_plan:
                items.append({"split": s.to_dict(), "segment": _plain(value)})
                metadata.append({"block_uuid": f"{slug(value)}_{s.name}"})
        return [items, metadata]
    split_plan = plan_for(frame, opts)
    splits.check_plan(split_plan, times)
    items = [{"split": s.to_dict(), "segment": None} for s in split_plan]
    metadata = [{"block_uuid": f"split_{s.name}"} for s in split_plan]
    return [items, metadata]


def train(
    item: dict[str, Any],
    frame: pd.DataFrame,
    kwargs: dict[str, Any],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """One dynamic child: train and evaluate one split on the H2O cluster."""
    from converge.training import trainer

    opts = RunOptions.from_kwargs(kwargs)
    settings = settings or get_settings()
    split = splits.Split.from_dict(item["split"])
    segment = item.get("segment")
    if segment is not None:
        frame = frame[frame[opts.segment] == segment].reset_index(drop=True)
    cfg = opts.train_config(frame)
    trainer.connect(settings.h2o_url, settings.h2o_request_timeout_s)
    return trainer.train_split(
        frame, split, cfg, run_id=opts.run_id, segment=None if segment is None else str(segment)
    )


def publish(
    results: list[dict[str, Any]],
    frame: pd.DataFrame,
    kwargs: dict[str, Any],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Reduce: aggregate split metrics, fit the final model(s), upload, register, announce."""
    from converge.training import publish as publisher

    opts = RunOptions.from_kwargs(kwargs)
    settings = settings or get_settings()
    results = _flatten(results)
    if not results:
        raise splits.EmptySplitError("no split produced a result")
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r.get("segment"), []).append(r)
    published = []
    for segment, group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        rows = frame if segment is None else frame[frame[opts.segment].astype(str) == str(segment)]
        name = opts.model_name if segment is None else f"{opts.model_name}-{slug(segment)}"
        published.append(
            publisher.publish(
                rows.reset_index(drop=True),
                group,
                opts.train_config(rows),
                name=name,
                cut_off_ms=opts.cut_off(frame),
                run_id=opts.run_id,
                settings=settings,
                segment=None if segment is None else str(segment),
                validation_rows=opts.validation_rows,
                upload=opts.publish,
            )
        )
    summary = {
        "run_id": opts.run_id,
        "splits": [
            _split_summary(r)
            for r in sorted(
                results, key=lambda r: (str(r.get("segment")), r["split"]["test_start_ms"])
            )
        ],
        "published": published,
        "h2o_seconds": sum(r["h2o_seconds"] for r in results)
        + sum(p.get("h2o_seconds", 0.0) for p in published),
    }
    if opts.result_path:
        Path(opts.result_path).write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _split_summary(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "split": r["label"],
        "segment": r.get("segment"),
        "n_train": r["n_train"],
        "n_test": r["n_test"],
        "max_train_time_ms": r["max_train_time_ms"],
        "min_test_time_ms": r["min_test_time_ms"],
        "metrics": r["metrics"],
        "primary_metric": r["primary_metric"],
        "h2o_seconds": r["h2o_seconds"],
        "seconds": r["seconds"],
    }


def _flatten(results: Any) -> list[dict[str, Any]]:
    """Mage's reduced output is a list; nested lists appear when a child returns a list."""
    out: list[dict[str, Any]] = []
    stack = list(results) if isinstance(results, list | tuple) else [results]
    for r in stack:
        if isinstance(r, list | tuple):
            out.extend(_flatten(r))
        elif isinstance(r, dict) and "split" in r:
            out.append(r)
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
