"""The ``model.published`` CloudEvent and its delivery, shared by training and bring-your-own
publishing: one signed event, one retry policy, whoever registered the version."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from converge.contracts import EVENT_MODEL_PUBLISHED, ModelPublished
from converge.event_signing import SIGNATURE_ATTRIBUTE, sign
from converge.settings import Settings


def cloud_event(
    name: str, version: int, settings: Settings, sha256: str | None = None, origin: str = "training"
) -> dict[str, Any]:
    """A structured-mode CloudEvent 1.0 for ``model.published``; data is exactly ModelPublished."""
    event = {
        "specversion": "1.0",
        "type": EVENT_MODEL_PUBLISHED,
        "source": f"{settings.event_source}/{origin}",
        "id": uuid.uuid4().hex,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "subject": f"{name}:{version}",
        "datacontenttype": "application/json",
        "data": ModelPublished(name=name, version=version).model_dump(),
    }
    if sha256:
        event["sha256"] = (
            sha256  # an extension attribute: lets a subscriber filter without a lookup
        )
    key = settings.publish_key.get_secret_value()
    if key:  # without the key the reload function refuses the event (the version stays staged)
        event[SIGNATURE_ATTRIBUTE] = sign(
            key, event["id"], event["type"], event["source"], event["time"], event["data"]
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
