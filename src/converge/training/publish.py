"""Publish the final model: fit up to the cut-off, export the MOJO, upload, register, announce.

Order matters for what a failure leaves behind. Everything that can fail on H2O (fit, MOJO
export, scoring the validation sample) happens before anything is stored. The MOJO and report are
uploaded before the registry row is written, so a registry row never points at a missing artifact;
if registering fails, the uploads are deleted again. The new version stays in ``staging``:
promotion is the reload function's job, after it has re-scored the validation sample.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import converge
from converge.published_event import cloud_event, emit
from converge.settings import Settings
from converge.training import report, trainer
from converge.training.loop import run_coroutine
from converge.training.trainer import TIME_COLUMN, TrainConfig

log = logging.getLogger(__name__)


class PublishError(trainer.TrainingError):
    """The final model could not be exported, checked, stored or registered."""


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)  # booleans reach H2O as the enum levels "True"/"False" (trainer.upload)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def validation_rows(frame: pd.DataFrame, cfg: TrainConfig, n: int) -> list[dict[str, Any]]:
    """The ``n`` newest rows' features, JSON-ready (missing values as null)."""
    picked = frame.tail(n)
    return [
        {k: _json_value(v) for k, v in rec.items()}
        for rec in picked[list(cfg.features)].to_dict("records")
    ]


def _predictions(pred_frame) -> list[dict[str, Any]]:
    """H2O's prediction frame as ``{"predict": label or value, "<class>": probability}`` rows."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pred_frame.as_data_frame(use_pandas=True)
    out = []
    for rec in table.to_dict("records"):
        row: dict[str, Any] = {}
        for col, raw in rec.items():
            raw = _json_value(raw)
            row[str(col)] = (
                raw
                if col == "predict" and isinstance(raw, str)
                else (None if raw is None else float(raw))
            )
        out.append(row)
    return out


def mojo_check(
    mojo: bytes, rows: list[dict[str, Any]], expected: list[dict[str, Any]], serving_scorer: str
) -> str:
    """Score the sample as serving will; raise if serving cannot score it or disagrees with H2O.

    The native reader goes first. A model it refuses is published only for a genmodel serving
    image, and only after genmodel itself (``PredictCsv``) scored the sample as H2O did. The reload
    function repeats the check before promoting; failing here keeps such a MOJO out of storage.
    """
    from converge.mojo import UnsupportedMojoError, load_mojo

    try:
        model = load_mojo(mojo, backend="native")
    except UnsupportedMojoError as exc:
        if serving_scorer != "genmodel":
            raise PublishError(
                f"MOJO check: the serving image scores natively and cannot score this model: "
                f"{exc}; choose another algorithm or option, or deploy the genmodel image "
                f"(chart value functions.scorer=genmodel)"
            ) from exc
        return _genmodel_check(mojo, rows, expected)
    try:
        got = model.predict_records(rows)
    except Exception as exc:
        raise PublishError(
            f"MOJO check: converge.mojo cannot score the validation sample: {exc}"
        ) from exc
    finally:
        model.close()
    _compare(got, expected)
    return f"ok: {len(rows)} rows agree"


def _genmodel_check(mojo: bytes, rows: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    from converge.predict_csv import predict_rows

    features = list(rows[0]) if rows else []
    try:
        got = predict_rows(mojo, rows, features)
    except Exception as exc:  # noqa: BLE001 - genmodel's refusal, named
        raise PublishError(f"MOJO check: genmodel cannot score this model: {exc}") from exc
    _compare(got, expected)
    return f"ok (genmodel): {len(rows)} rows agree"


def _as_float(value: Any) -> float:
    """A number, or PredictCsv's text for one (decimal, or Java's hex notation)."""
    if isinstance(value, str) and "0x" in value:
        return float.fromhex(value)
    return float(value)


def _compare(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    for i, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        for key, want in theirs.items():
            have = mine.get(key)
            if isinstance(want, float) and have is not None:
                if abs(_as_float(have) - want) > 1e-6 * max(1.0, abs(want)):
                    raise PublishError(
                        f"MOJO check: row {i} {key}={have!r}, the trainer saw {want!r}"
                    )
            elif str(have) != str(want):
                raise PublishError(f"MOJO check: row {i} {key}={have!r}, the trainer saw {want!r}")


def fit_final(
    frame: pd.DataFrame, cfg: TrainConfig, *, run_id: str, name: str, n_validation: int
) -> dict[str, Any]:
    """Fit on every row before the cut-off; return MOJO bytes, metrics, importance and a sample."""
    h2o = trainer._h2o()
    classification = trainer.problem_of(frame[cfg.target], cfg.problem) == "classification"
    if classification and frame[cfg.target].dropna().astype(str).nunique() < 2:
        raise trainer.SingleClassError(f"final model {name!r}: the target has a single class")
    prefix = f"cv_{trainer._safe(run_id)}_{uuid.uuid4().hex[:6]}_{trainer._safe(name)}_final"
    frame_h2o = sample_h2o = pred = model = estimator = None
    started = time.perf_counter()
    try:
        with trainer.h2o_errors(f"final fit of {name!r}"):
            frame_h2o = trainer.upload(frame, cfg, f"{prefix}_all", classification)
            estimator = trainer.build_estimator(cfg, f"{prefix}_model", classification)
            model = trainer.fit(estimator, cfg, frame_h2o)
            metrics = trainer.metrics_of(model.model_performance(train=True), classification)
            rows = validation_rows(frame, cfg, n_validation)
            sample_df = frame.tail(n_validation)
            sample_h2o = trainer.upload(sample_df, cfg, f"{prefix}_sample", classification)
            pred = model.predict(sample_h2o)
            predictions = _predictions(pred)
            with tempfile.TemporaryDirectory() as tmp:
                path = model.download_mojo(path=tmp)
                mojo = Path(path).read_bytes()
            info = {
                "algo": str(model.algo),
                "model_id": str(model.model_id),
                "parameters": {
                    k: _json_value(v["actual"])
                    for k, v in model.params.items()
                    if isinstance(v, dict)
                    and v.get("actual") != v.get("default")
                    and isinstance(
                        _json_value(v.get("actual")), str | int | float | bool | type(None)
                    )
                },
            }
            varimp = trainer.variable_importance(model)
            h2o_version = str(h2o.cluster().version)
    finally:
        if cfg.estimator == "automl" and estimator is not None:
            trainer.remove_automl(estimator)
        trainer.remove(pred, sample_h2o, frame_h2o, model if cfg.estimator != "automl" else None)
        trainer.sweep(prefix)
    return {
        "mojo": mojo,
        "metrics": metrics,
        "variable_importance": varimp,
        "rows": rows,
        "predictions": predictions,
        "model": info,
        "h2o_version": h2o_version,
        "problem": "classification" if classification else "regression",
        "h2o_seconds": time.perf_counter() - started,
    }


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, last and per-split values of every metric: what the registry stores as ``metrics``."""
    ordered = sorted(results, key=lambda r: r["split"]["test_start_ms"])
    names = sorted({k for r in ordered for k in r["metrics"]})
    out: dict[str, Any] = {"primary_metric": ordered[0]["primary_metric"], "n_splits": len(ordered)}
    for m in names:
        values = [r["metrics"][m] for r in ordered if m in r["metrics"]]
        out[f"{m}_mean"] = float(np.mean(values))
        out[f"{m}_last"] = float(values[-1])
    out["splits"] = [{"split": r["split"]["name"], **r["metrics"]} for r in ordered]
    return out


async def _register(settings: Settings, name: str, **fields: Any):
    from converge.db import create_pool
    from converge.registry import Registry

    pool = await create_pool(settings)
    try:
        return await Registry(pool).register(name, **fields)
    finally:
        await pool.close()


async def _next_version(settings: Settings, name: str) -> int:
    from converge.db import create_pool
    from converge.registry import Registry

    pool = await create_pool(settings)
    try:
        versions = await Registry(pool).list_versions(name)
    except Exception as exc:
        if type(exc).__name__ == "ModelNotFound":
            return 1
        raise
    finally:
        await pool.close()
    return max((v.version for v in versions), default=0) + 1


def publish(
    frame: pd.DataFrame,
    results: list[dict[str, Any]],
    cfg: TrainConfig,
    *,
    name: str,
    cut_off_ms: int,
    run_id: str,
    settings: Settings,
    segment: str | None = None,
    validation_rows: int = 50,
    upload: bool = True,
) -> dict[str, Any]:
    """Final fit, MOJO, report, upload, register, event. Returns what was published."""
    from converge.artifacts import ArtifactStore

    data = frame[frame[TIME_COLUMN] < cut_off_ms].reset_index(drop=True)
    if data.empty:
        raise PublishError(f"{name!r}: no rows before the cut-off for the final fit")
    trainer.connect(settings.h2o_url, settings.h2o_request_timeout_s)
    final = fit_final(data, cfg, run_id=run_id, name=name, n_validation=validation_rows)
    check = mojo_check(final["mojo"], final["rows"], final["predictions"], settings.serving_scorer)
    metrics = {**aggregate(results), "final_training": final["metrics"]}
    lineage = {
        "cut_off": datetime.fromtimestamp(cut_off_ms / 1000, tz=UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "row_count": len(data),
        "first_event_time": _iso(int(data[TIME_COLUMN].min())),
        "last_event_time": _iso(int(data[TIME_COLUMN].max())),
        "split_plan": [
            r["split"] for r in sorted(results, key=lambda r: r["split"]["test_start_ms"])
        ],
        "segment": segment,
        "h2o_version": final["h2o_version"],
        "h2o_client_version": _h2o_client_version(),
        "converge_version": converge.__version__,
        "parameters": {
            **cfg.to_dict(),
            "algo": final["model"]["algo"],
            "h2o": final["model"]["parameters"],
        },
        "run_id": run_id,
        "mojo_check": check,
    }
    out: dict[str, Any] = {
        "name": name,
        "segment": segment,
        "metrics": {k: v for k, v in metrics.items() if k != "splits"},
        "mojo_bytes": len(final["mojo"]),
        "mojo_check": check,
        "h2o_seconds": final["h2o_seconds"],
        "version": None,
    }
    if not upload:
        return out
    store = ArtifactStore(settings)
    version_guess = run_coroutine(_next_version(settings, name))
    mojo_art = store.put(
        store.model_key(name, version_guess), final["mojo"], content_type="application/zip"
    )
    html = report.render(
        name=name, version=version_guess, results=results, final=final, lineage=lineage
    )
    try:
        report_art = store.put(
            store.model_key(name, version_guess, "report.html"),
            html.encode(),
            content_type="text/html; charset=utf-8",
        )
        registered = run_coroutine(
            _register(
                settings,
                name,
                artifact_uri=mojo_art.uri,
                sha256=mojo_art.sha256,
                metrics=metrics,
                lineage=lineage,
                validation_sample={"rows": final["rows"], "predictions": final["predictions"]},
                report_uri=report_art.uri,
                description=f"walk-forward {cfg.estimator} on {cfg.target}",
            )
        )
    except BaseException:
        # Nothing half-published: no registry row was written, so the uploads go too.
        for key in (
            store.model_key(name, version_guess),
            store.model_key(name, version_guess, "report.html"),
        ):
            try:
                store.delete(key)
            except Exception:  # noqa: BLE001
                log.warning("could not delete %s after a failed publish", key)
        raise
    event = cloud_event(name, registered.version, settings, registered.sha256)
    out.update(
        version=registered.version,
        stage=registered.stage,
        artifact_uri=registered.artifact_uri,
        sha256=registered.sha256,
        report_uri=registered.report_uri,
        event={"id": event["id"], **emit(event, settings.broker_url)},
    )
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _h2o_client_version() -> str:
    import h2o

    return str(h2o.__version__)
