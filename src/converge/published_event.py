"""The signed CloudEvents converge sends and their delivery: ``model.published`` (training and
bring-your-own publishing) and ``rollout.decided`` (predict, when a canary met its thresholds);
one signing, one retry policy."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from converge.contracts import (
    EVENT_MODEL_PUBLISHED,
    EVENT_ROLLOUT_DECIDED,
    ModelPublished,
    RolloutDecided,
)
from converge.event_signing import SIGNATURE_ATTRIBUTE, sign
from converge.settings import Settings


def cloud_event(
    name: str, version: int, settings: Settings, sha256: str | None = None, origin: str = "training"
) -> dict[str, Any]:
    """A structured-mode CloudEvent 1.0 for ``model.published``; data is exactly ModelPublished."""
    event = _signed(
        EVENT_MODEL_PUBLISHED, ModelPublished(name=name, version=version).model_dump(),
        f"{name}:{version}", f"{settings.event_source}/{origin}", settings.publish_key,
        # sha256 as an extension attribute lets a subscriber filter without a lookup
        extensions={"sha256": sha256} if sha256 else {},
    )  # fmt: skip
    return event


def rollout_decided_event(name: str, rollout_id: int, settings: Settings) -> dict[str, Any]:
    """``rollout.decided``, signed with the rollout key: predict's request to the reload function
    to carry out the promotion recorded as rollout ``rollout_id``."""
    data = RolloutDecided(name=name, rollout_id=rollout_id).model_dump()
    return _signed(EVENT_ROLLOUT_DECIDED, data, f"{name}:rollout-{rollout_id}",
                   f"{settings.event_source}/predict", settings.rollout_key)


def _signed(
    event_type: str, data: dict[str, Any], subject: str, source: str, key: SecretStr,
    extensions: dict[str, str] | None = None,
) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "type": event_type,
        "source": source,
        "id": uuid.uuid4().hex,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
        **(extensions or {}),
    }
    secret = key.get_secret_value()
    if secret:  # without the key the receiver refuses the event (nothing changes)
        event[SIGNATURE_ATTRIBUTE] = sign(
            secret, event["id"], event["type"], event["source"], event["time"], event["data"]
        )
    return event


def emit(
    event: dict[str, Any], url: str, timeout_s: float = 60.0, attempts: int = 4
) -> dict[str, Any]:
    """POST the event, retrying refused connections and 5xx as a broker would; a broker that stays
    down is reported, not raised: the version is registered and can be reloaded by hand."""
    import time

    import httpx

    out: dict[str, Any] = {"delivered": False, "url": url}
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(2.0**attempt, 10.0))
        try:
            response = httpx.post(
                url,
                content=json.dumps(event).encode(),
                headers={"Content-Type": "application/cloudevents+json; charset=utf-8"},
                timeout=timeout_s,
            )
        except httpx.HTTPError as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            continue
        out = {
            "delivered": 200 <= response.status_code < 300,
            "url": url,
            "status": response.status_code,
        }
        if out["delivered"] or response.status_code < 500:
            if not out["delivered"]:
                out["error"] = response.text[:300]
            break
        out["error"] = response.text[:300]
    out["attempts"] = attempt + 1
    return out
