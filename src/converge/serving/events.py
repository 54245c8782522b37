"""CloudEvents over HTTP, binary and structured modes, parsed with the ``cloudevents`` SDK.

Binary mode carries the attributes in ``ce-*`` headers and the data as the body; structured mode
sends one JSON envelope (``application/cloudevents+json``). Either way the handlers get the type,
id and the decoded JSON data; a broken envelope or data is a 400, an unexpected type a 400 too
(a Knative Trigger filters by type, so anything else is a misconfiguration, not a retry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from converge.serving.http import ServingError, parse_json

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


@dataclass(frozen=True)
class Event:
    type: str
    id: str
    source: str
    data: Any


def is_cloudevent(headers: Headers) -> bool:
    """Binary mode has ``ce-specversion``; structured and batch mode say so in Content-Type."""
    if "ce-specversion" in headers:
        return True
    content_type = headers.get("content-type", "").lower()
    return content_type.startswith((STRUCTURED, BATCH))


def parse_event(headers: Headers, body: bytes, expected: set[str] | None = None) -> Event:
    """Decode one CloudEvent; JSON data is returned decoded."""
    from cloudevents.exceptions import GenericException  # on the first event: not a start cost
    from cloudevents.http import from_http

    if headers.get("content-type", "").lower().startswith(BATCH):
        raise ServingError(400, "batched CloudEvents are not supported: send one event per request")
    try:
        event = from_http(dict(headers.items()), body, data_unmarshaller=lambda raw: raw)
    except GenericException as exc:
        raise ServingError(400, f"invalid CloudEvent: {exc}") from None
    event_type = event["type"]
    if expected is not None and event_type not in expected:
        raise ServingError(
            400, f"unexpected CloudEvent type {event_type!r}; accepted: {sorted(expected)}"
        )
    raw = event.data
    if raw is None or raw in (b"", ""):
        raise ServingError(400, "CloudEvent without data")
    data = parse_json(raw.encode() if isinstance(raw, str) else bytes(raw))
    return Event(type=event_type, id=str(event["id"]), source=str(event["source"]), data=data)


def to_binary(event_type: str, source: str, data: Any) -> tuple[dict[str, str], Any]:
    """Headers for replying (or emitting) in binary mode; the caller sends ``data`` as JSON."""
    from cloudevents.http import CloudEvent

    event = CloudEvent({"type": event_type, "source": source}, data)
    headers = {
        "ce-specversion": event["specversion"],
        "ce-type": event["type"],
        "ce-source": event["source"],
        "ce-id": event["id"],
        "ce-time": event["time"],
    }
    return headers, data
