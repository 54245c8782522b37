"""One H2O job per walk-forward split, on a persistent cluster that outlives every job.

Each split uploads its own two frames, trains one estimator (or an AutoML run) with fixed seeds,
scores the test frame, and removes everything it created before returning, so a long walk-forward
run (and parallel splits from several processes) leaves the cluster's memory where it found it.
Results are plain JSON-able dicts: Mage stores block outputs between processes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from converge.errors import ConvergeError, InvalidInput, Unavailable
from converge.training.splits import Split, SplitError, check_split

TIME_COLUMN = "event_time"  # epoch milliseconds (UTC)
ENTITY_COLUMN = "entity_id"
ESTIMATORS = ("gbm", "drf", "glm", "xgboost", "deeplearning", "automl")
# Each estimator's own starting point, sized for walk-forward (one fit per split plus the final
# fit); ``estimator_params`` override them key by key. GBM's ``ntrees`` would break AutoML and
# GLM, so no estimator inherits another's.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "gbm": {"ntrees": 50, "max_depth": 5},
    "drf": {"ntrees": 50, "max_depth": 12},
    "glm": {"lambda_search": True, "nlambdas": 20},
    "xgboost": {"ntrees": 50, "max_depth": 5},
    "deeplearning": {"hidden": [32, 32], "epochs": 20, "reproducible": True},
    # Cross-validation would multiply every split's cost by the fold count.
    "automl": {"nfolds": 0},
}
Problem = Literal["auto", "classification", "regression"]


class TrainingError(ConvergeError):
    """Training could not produce a model; the message says which split and why."""


class H2OUnavailable(Unavailable, TrainingError):
    """The H2O cluster cannot be reached, or died while a job ran."""


class SingleClassError(SplitError):
    """A classification split whose training rows all have the same label."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train: target, features, estimator and its parameters. Seeds are fixed."""

    target: str
    features: tuple[str, ...]
    estimator: str = "gbm"
    params: dict[str, Any] = field(default_factory=dict)
    problem: Problem = "auto"
    seed: int = 42
    max_models: int = 5
    max_runtime_secs: int = 0

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise InvalidInput(
                f"estimator must be one of {', '.join(ESTIMATORS)}; got {self.estimator!r}"
            )
        if not self.features:
            raise InvalidInput("no feature columns to train on")
        if self.target in self.features:
            raise InvalidInput(f"target {self.target!r} is also listed as a feature")

    def estimator_params(self) -> dict[str, Any]:
        """The estimator's defaults with the configured parameters over them."""
        return {**DEFAULT_PARAMS[self.estimator], **self.params}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "features": list(self.features),
            "estimator": self.estimator,
            "params": self.estimator_params(),
            "problem": self.problem,
            "seed": self.seed,
            "max_models": self.max_models,
            "max_runtime_secs": self.max_runtime_secs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(
            **{
                **data,
                "features": tuple(data["features"]),
                "params": dict(data.get("params") or {}),
            }
        )


def problem_of(
    target: pd.Series, problem: Problem = "auto"
) -> Literal["classification", "regression"]:
    """Strings, booleans and categoricals are classification; numbers are regression."""
    if problem != "auto":
        return problem
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    return "regression"


def _h2o():
    import h2o

    return h2o


class H2ONoAnswer(ConnectionError):
    """A request the cluster did not answer; the h2o client's job polling does not retry it."""


def connect(url: str, request_timeout_s: float = 120.0) -> str:
    """Connect this process to the cluster at ``url``; return its version or raise H2OUnavailable.

    After ``h2o.connect`` the client waits for every answer without a limit, and its job polling
    retries a failed request 30 times, so a frozen node would hold the run for hours. Every
    request gets ``request_timeout_s``; once one fails, this connection fails every later one
    at once (a restarted node has lost the job's frames anyway)."""
    h2o = _h2o()
    h2o.no_progress()
    try:
        conn = h2o.connect(url=url, verbose=False)
        conn.timeout_interval = request_timeout_s
        cluster = h2o.cluster()
        if cluster is None or not cluster.cloud_healthy:
            raise H2OUnavailable(f"H2O at {url} answers but its cloud is not healthy")
        version = str(cluster.version)
    except H2OUnavailable:
        raise
    except Exception as exc:  # the client raises several unrelated types for "no server"
        raise H2OUnavailable(f"H2O at {url} is unreachable: {_first_line(exc)}") from exc
    _fail_fast(conn, h2o.exceptions.H2OConnectionError)
    return version


def _fail_fast(conn, connection_error: type[Exception]) -> None:
    """Make ``conn`` raise H2ONoAnswer for a failed request and for every request after it."""
    request = conn.request
    failure: list[str] = []

    def checked(*args: Any, **kwargs: Any) -> Any:
        if failure:
            raise H2ONoAnswer(failure[0])
        try:
            return request(*args, **kwargs)
        except connection_error as exc:
            failure.append(_first_line(exc))
            raise H2ONoAnswer(failure[0]) from exc

    conn.request = checked


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


@contextmanager
def h2o_errors(what: str) -> Iterator[None]:
    """Turn a connection failure inside an H2O call into H2OUnavailable naming ``what``."""
    h2o = _h2o()
    try:
        yield
    except (ConvergeError, InvalidInput):
        raise
    except (h2o.exceptions.H2OConnectionError, ConnectionError, OSError) as exc:
        raise H2OUnavailable(f"H2O stopped answering during {what}: {_first_line(exc)}") from exc
    except h2o.exceptions.H2OServerError as exc:
        raise H2OUnavailable(f"H2O failed during {what}: {_first_line(exc)}") from exc
    except Exception as exc:
        if "connection" in str(exc).lower() or "job" in type(exc).__name__.lower():
            raise H2OUnavailable(f"H2O failed during {what}: {_first_line(exc)}") from exc
        raise TrainingError(f"{what} failed: {type(exc).__name__}: {_first_line(exc)}") from exc


def upload(df: pd.DataFrame, cfg: TrainConfig, frame_id: str, classification: bool):
    """An H2OFrame of the features and target; strings become enums, the target a factor if needed."""
    h2o = _h2o()
    columns = [*cfg.features, cfg.target]
    data = df[columns].copy()
    types: dict[str, str] = {}
    for col in columns:
        series = data[col]
        if pd.api.types.is_bool_dtype(series):
            data[col] = series.astype("string")
            types[col] = "enum"
        elif not pd.api.types.is_numeric_dtype(series):
            types[col] = "enum"
        else:
            types[col] = "real"
    if classification:
        data[cfg.target] = data[cfg.target].astype("string")
        types[cfg.target] = "enum"
    frame = h2o.H2OFrame(data, destination_frame=frame_id, column_types=types)
    return frame


def build_estimator(cfg: TrainConfig, model_id: str, classification: bool):
    """The estimator named in the config, seeded; AutoML gets ``max_models`` and a project of its own."""
    from h2o.automl import H2OAutoML
    from h2o.estimators import (
        H2ODeepLearningEstimator,
        H2OGeneralizedLinearEstimator,
        H2OGradientBoostingEstimator,
        H2ORandomForestEstimator,
        H2OXGBoostEstimator,
    )

    params = cfg.estimator_params()
    name = cfg.estimator
    if name == "automl":
        if "include_algos" not in params:
            # Stacked ensembles need cross-validation and deep learning is not reproducible.
            params.setdefault("exclude_algos", ["StackedEnsemble", "DeepLearning"])
        if cfg.max_runtime_secs:
            params.setdefault("max_runtime_secs", cfg.max_runtime_secs)
        return _construct(
            H2OAutoML, name, params, max_models=cfg.max_models, seed=cfg.seed, project_name=model_id
        )
    if name == "xgboost" and not H2OXGBoostEstimator.available():
        raise InvalidInput("estimator 'xgboost' is not available on this H2O cluster")
    if name == "glm" and classification:
        params.setdefault("family", "AUTO")
    cls = {
        "gbm": H2OGradientBoostingEstimator,
        "drf": H2ORandomForestEstimator,
        "glm": H2OGeneralizedLinearEstimator,
        "xgboost": H2OXGBoostEstimator,
        "deeplearning": H2ODeepLearningEstimator,
    }[name]
    return _construct(cls, name, params, model_id=model_id, seed=cfg.seed)


def _construct(cls, name: str, params: dict[str, Any], **fixed: Any):
    """The H2O estimator, or InvalidInput naming the parameters it does not take."""
    try:
        return cls(**fixed, **params)
    except TypeError as exc:
        raise InvalidInput(
            f"estimator_params: {name} does not take {_first_line(exc).split('argument')[-1].strip()}"
            f" (its defaults: {json.dumps(DEFAULT_PARAMS[name])})"
        ) from exc


def fit(estimator, cfg: TrainConfig, frame):
    """Train and return the model (for AutoML, its leader)."""
    from h2o.automl import H2OAutoML

    estimator.train(x=list(cfg.features), y=cfg.target, training_frame=frame)
    if isinstance(estimator, H2OAutoML):
        return estimator.leader
    return estimator


def metrics_of(perf, classification: bool) -> dict[str, float]:
    """The metrics a walk-forward report compares across splits."""

    def safe(fn) -> float | None:
        try:
            value = fn()
        except Exception:  # noqa: BLE001
            return None
        if isinstance(value, list):  # some accessors return [[threshold, value]]
            value = value[0][-1] if value and isinstance(value[0], list) else value[0]
        return None if value is None or not np.isfinite(value) else float(value)

    if not classification:
        return {
            k: v
            for k, v in {
                "rmse": safe(perf.rmse),
                "mae": safe(perf.mae),
                "r2": safe(perf.r2),
            }.items()
            if v is not None
        }
    out = {"logloss": safe(perf.logloss), "mean_per_class_error": safe(perf.mean_per_class_error)}
    if hasattr(perf, "auc") and type(perf).__name__.startswith("H2OBinomial"):
        out["auc"] = safe(perf.auc)
        out["accuracy"] = safe(perf.accuracy)
    return {k: v for k, v in out.items() if v is not None}


def primary_metric(classification: bool, metrics: dict[str, float]) -> str:
    if not classification:
        return "rmse"
    return "auc" if "auc" in metrics else "logloss"


def variable_importance(model, limit: int = 20) -> list[dict[str, Any]]:
    try:
        table = model.varimp(use_pandas=False) or []
    except Exception:  # noqa: BLE001
        return []
    return [{"variable": str(r[0]), "importance": float(r[2])} for r in table[:limit]]


def remove(*objects) -> None:
    """Free cluster memory; a frame that is already gone (or a dead cluster) is not an error here."""
    h2o = _h2o()
    for obj in objects:
        if obj is None:
            continue
        try:
            h2o.remove(obj, cascade=True)
        except Exception:  # noqa: BLE001,S110
            pass


def remove_automl(aml) -> None:
    """Remove every model of an AutoML project (leaderboard, base models) and the project itself."""
    h2o = _h2o()
    try:
        ids = [
            str(m)
            for m in aml.leaderboard["model_id"].as_data_frame(use_pandas=False, header=False)
        ]
    except Exception:  # noqa: BLE001
        ids = []
    for model_id in ids:
        try:
            h2o.remove(model_id.strip("[]\"'"), cascade=True)
        except Exception:  # noqa: BLE001,S110
            pass
    try:
        h2o.remove(aml.project_name)
    except Exception:  # noqa: BLE001,S110
        pass


def sweep(prefix: str) -> None:
    """Remove every key that carries this job's prefix (AutoML leaves sessions, leaderboards,
    event logs and frame copies named after its project)."""
    h2o = _h2o()
    try:
        keys = [str(k) for k in h2o.ls()["key"]]
    except Exception:  # noqa: BLE001
        return
    for key in keys:
        if prefix in key:
            try:
                h2o.remove(key, cascade=True)
            except Exception:  # noqa: BLE001,S110
                pass


def _predicted_values(pred_frame, classification: bool) -> np.ndarray:
    rows = pred_frame["predict"].as_data_frame(use_pandas=False, header=False)
    values = [r[0] for r in rows]
    return np.array(values, dtype=object if classification else float)


def train_split(
    df: pd.DataFrame,
    split: Split,
    cfg: TrainConfig,
    *,
    run_id: str | None = None,
    segment: str | None = None,
    sample_points: int = 300,
) -> dict[str, Any]:
    """Train and evaluate one split; return its metrics, sizes, timings and a plot sample."""
    started = time.perf_counter()
    label = split.name if segment is None else f"{segment}/{split.name}"
    times = df[TIME_COLUMN].to_numpy(dtype=np.int64)
    train_mask, test_mask = check_split(split, times)
    train_df, test_df = df[train_mask], df[test_mask]
    classification = problem_of(df[cfg.target], cfg.problem) == "classification"
    if classification:
        classes = train_df[cfg.target].dropna().astype(str).unique()
        if len(classes) < 2:
            raise SingleClassError(
                f"split {label!r}: every training row has {cfg.target}={classes[0] if len(classes) else None!r};"
                " a classifier needs at least two classes"
            )
    # Unique per job: two Mage databases may both be at pipeline run 7 on one shared cluster.
    prefix = f"cv_{_safe(run_id or '')}_{uuid.uuid4().hex[:6]}_{_safe(label)}"
    train_frame = test_frame = pred = model = estimator = None
    h2o_started = time.perf_counter()
    try:
        with h2o_errors(f"split {label!r}"):
            train_frame = upload(train_df, cfg, f"{prefix}_train", classification)
            test_frame = upload(test_df, cfg, f"{prefix}_test", classification)
            estimator = build_estimator(cfg, f"{prefix}_model", classification)
            model = fit(estimator, cfg, train_frame)
            perf = model.model_performance(test_frame)
            pred = model.predict(test_frame)
            predicted = _predicted_values(pred, classification)
            metrics = metrics_of(perf, classification)
            varimp = variable_importance(model)
            algo = str(model.algo)
            model_id = str(model.model_id)
    finally:
        if cfg.estimator == "automl" and estimator is not None:
            remove_automl(estimator)
        remove(pred, train_frame, test_frame, model if cfg.estimator != "automl" else None)
        sweep(prefix)
    h2o_seconds = time.perf_counter() - h2o_started
    actual = test_df[cfg.target].to_numpy()
    idx = np.linspace(0, len(actual) - 1, num=min(sample_points, len(actual))).astype(int)
    return {
        "split": split.to_dict(),
        "segment": segment,
        "label": label,
        "problem": "classification" if classification else "regression",
        "primary_metric": primary_metric(classification, metrics),
        "metrics": metrics,
        "n_train": int(train_mask.sum()),
        "n_test": int(test_mask.sum()),
        "max_train_time_ms": int(times[train_mask].max()),
        "min_test_time_ms": int(times[test_mask].min()),
        "algo": algo,
        "model_id": model_id,
        "variable_importance": varimp,
        "sample": {
            "actual": [_plain(v) for v in actual[idx]],
            "predicted": [_plain(v) for v in predicted[idx]],
        },
        "h2o_seconds": h2o_seconds,
        "seconds": time.perf_counter() - started,
    }


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
