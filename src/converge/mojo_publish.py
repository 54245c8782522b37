"""Publish a MOJO trained elsewhere (H2O Flow, AutoML on a laptop) the way training publishes one.

Same path as :mod:`converge.training.publish` from the upload on: the MOJO and a report go to the
artifact store (sha256 in the registry), a ``staging`` version is registered with a validation
sample, and ``model.published`` goes to the broker, whose reload re-scores the sample before it
promotes. The sample's expected answers come from genmodel where a JVM is available; without one
they are converge's own, and the lineage says so (``validation.source: self-computed``): the
reload check then proves only that the artifact loads and scores the same way twice.

Without rows from the user, the sample is built from the MOJO's own schema: every feature
missing, then each categorical's levels in turn with numbers at 0 (at most 20 rows).
"""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import UTC, datetime
from typing import Any

import converge
from converge.artifacts import model_key
from converge.errors import InvalidInput, ModelNotFound

log = logging.getLogger(__name__)

MAX_VALIDATION_ROWS = 1_000
GENERATED_ROWS = 20


def load(mojo: bytes) -> Any:
    """The MOJO parsed by converge's reader; anything it cannot read is the caller's 422."""
    from converge.mojo import load_mojo

    try:
        return load_mojo(mojo)
    except Exception as exc:  # noqa: BLE001 - a zip that is no MOJO, or a corrupt one
        raise InvalidInput(f"mojo: not a readable H2O MOJO: {exc}") from None


def schema_rows(model: Any) -> list[dict[str, Any]]:
    """Rows that exercise the model without user data: all missing, then each level once."""
    features = list(model.feature_names)
    domains = model.domains
    rows: list[dict[str, Any]] = [{name: None for name in features}]
    levels = {n: list(domains.get(n) or []) for n in features}
    for i in range(max((len(v) for v in levels.values()), default=0)):
        if len(rows) >= GENERATED_ROWS:
            break
        rows.append(
            {n: (levels[n][i % len(levels[n])] if levels[n] else 0.0) for n in features}
        )
    return rows


def typed_rows(model: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the model's features; a categorical level read as a number ("2" -> 2.0) is text again,
    as it was in the file (genmodel takes levels as strings)."""
    if not rows:
        raise InvalidInput("validation: no rows")
    if len(rows) > MAX_VALIDATION_ROWS:
        raise InvalidInput(f"validation: at most {MAX_VALIDATION_ROWS} rows")
    domains = model.domains
    features = list(model.feature_names)
    if not any(name in row for row in rows for name in features):
        raise InvalidInput(f"validation: no column is a feature of the model ({features[:10]})")
    out = []
    for row in rows:
        typed: dict[str, Any] = {}
        for name in features:
            value = row.get(name)
            if domains.get(name) and isinstance(value, float) and value.is_integer():
                value = str(int(value))
            elif domains.get(name) and isinstance(value, int | float):
                value = str(value)
            typed[name] = value
        out.append(typed)
    return out


def expected_answers(mojo: bytes, model: Any, rows: list[dict[str, Any]]) -> tuple[list, str]:
    """(predictions shaped like H2O's predict frame, their source): genmodel, else our scorer."""
    try:
        from converge.reference import GenmodelReference

        return GenmodelReference(mojo).predict(rows), "genmodel"
    except Exception as exc:  # noqa: BLE001 - no JVM or no genmodel here: say so, score ourselves
        log.info("publishing without genmodel (%s): validation answers are self-computed", exc)
    from converge.serving.holder import LoadedModel
    from converge.serving.scoring import predict_rows

    loaded = LoadedModel(name="", version=0, sha256="", model=model)
    answers = []
    for scored in predict_rows(loaded, rows):
        answer = {"predict": scored["label"]}
        for label, column in loaded.classes or []:
            answer[column] = (scored["probabilities"] or {}).get(label)
        answers.append(answer)
    return answers, "self-computed"


def report_html(name: str, version: int, sha256: str, lineage: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in {"model": name, "version": version, "sha256": sha256, **lineage}.items()
    )
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(name)} v{version}</title>"
        f"<h1>{html.escape(name)} v{version}: published MOJO</h1><table>{rows}</table>"
    )


async def publish_mojo(
    *,
    name: str,
    mojo: bytes,
    rows: list[dict[str, Any]] | None,
    registry: Any,
    store: Any,
    settings: Any,
    description: str | None = None,
) -> dict[str, Any]:
    """Check, upload, register and announce ``mojo`` as the next version of ``name``."""
    from converge.published_event import cloud_event, emit

    model_key(name, 1)  # the name is checked before anything is read or stored
    model = await asyncio.to_thread(load, mojo)
    try:
        sample_rows = typed_rows(model, rows) if rows is not None else schema_rows(model)
        predictions, source = await asyncio.to_thread(expected_answers, mojo, model, sample_rows)
        lineage = {
            "source": "published MOJO",
            "algorithm": model.algorithm,
            "features": len(model.feature_names),
            "validation": {
                "source": source,
                "rows": len(sample_rows),
                "rows_from": "user" if rows is not None else "the MOJO's schema",
            },
            "published_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "converge_version": converge.__version__,
        }
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()
    try:
        versions = await registry.list_versions(name)
    except ModelNotFound:
        versions = []
    version = max((v.version for v in versions), default=0) + 1
    artifact = await asyncio.to_thread(
        store.put, model_key(name, version), mojo, "application/zip"
    )
    report_key = model_key(name, version, "report.html")
    try:
        page = report_html(name, version, artifact.sha256, lineage)
        report = await asyncio.to_thread(
            store.put, report_key, page.encode(), "text/html; charset=utf-8"
        )
        registered = await registry.register(
            name,
            artifact_uri=artifact.uri,
            sha256=artifact.sha256,
            metrics={},
            lineage=lineage,
            validation_sample={"rows": sample_rows, "predictions": predictions},
            report_uri=report.uri,
            description=description or "published MOJO",
        )
    except BaseException:
        for key in (model_key(name, version), report_key):  # nothing half-published
            try:
                await asyncio.to_thread(store.delete, key)
            except Exception:  # noqa: BLE001
                log.warning("could not delete %s after a failed publish", key)
        raise
    event = cloud_event(name, registered.version, settings, registered.sha256, origin="publish")
    delivery = await asyncio.to_thread(emit, event, settings.broker_url, 30.0, 2)
    return {
        "name": name,
        "version": registered.version,
        "stage": registered.stage,
        "sha256": registered.sha256,
        "artifact_uri": registered.artifact_uri,
        "report_uri": registered.report_uri,
        "validation": lineage["validation"],
        "event": {"id": event["id"], **delivery},
    }
