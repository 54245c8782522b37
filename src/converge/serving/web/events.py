"""CloudEvents over HTTP, binary and structured modes, parsed with the ``cloudevents`` SDK.

Binary mode carries the attributes in ``ce-*`` headers and the data as the body; structured mode
sends one JSON envelope (``application/cloudevents+json``). Either way the handlers get the type,
id, source, time, the signature extension and the decoded JSON data; a broken envelope or data is a
400, an unexpected type a 400 too (a Knative Trigger filters by type, so anything else is a
misconfiguration, not a retry). Events are parsed only on a function's event route
(``POST /events``): CloudEvent headers on any other route are ignored, never dispatched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from converge.errors import MalformedRequest, PermissionDenied
from converge.event_signing import SIGNATURE_ATTRIBUTE, verify
from converge.serving.web.body import parse_json

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


@dataclass(frozen=True)
class Event:
    type: str
    id: str
    source: str
    data: Any
    time: str | None = None
    signature: str | None = None


def parse_event(headers: Headers, body: bytes, expected: set[str] | None = None) -> Event:
    """Decode one CloudEvent; JSON data is returned decoded."""
    from cloudevents.exceptions import GenericException  # on the first event: not a start cost
    from cloudevents.http import from_http

    if headers.get("content-type", "").lower().startswith(BATCH):
        raise MalformedRequest("batched CloudEvents are not supported: send one event per request")
    try:
        event = from_http(dict(headers.items()), body, data_unmarshaller=lambda raw: raw)
    except GenericException as exc:
        raise MalformedRequest(f"invalid CloudEvent: {exc}") from None
    event_type = event["type"]
    if expected is not None and event_type not in expected:
        raise MalformedRequest(
            f"unexpected CloudEvent type {event_type!r}; accepted: {sorted(expected)}"
        )
    raw = event.data
    if raw is None or raw in (b"", ""):
        raise MalformedRequest("CloudEvent without data")
    data = parse_json(raw.encode() if isinstance(raw, str) else bytes(raw))
    time, signature = event.get("time"), event.get(SIGNATURE_ATTRIBUTE)
    return Event(
        type=event_type,
        id=str(event["id"]),
        source=str(event["source"]),
        data=data,
        time=None if time is None else str(time),
        signature=None if signature is None else str(signature),
    )


def authenticate(event: Event, key: str, credential: str, max_age_s: float) -> None:
    """Refuse an event not signed with ``key`` (401 unsigned, 403 wrong or stale); no key
    configured refuses every event of the type (403), never accepts them unchecked."""
    if not key:
        raise PermissionDenied(f"{event.type} events refused: {credential} is not configured")
    verify(
        key,
        event.signature,
        event_id=event.id,
        event_type=event.type,
        source=event.source,
        time=event.time,
        data=event.data,
        max_age_s=max_age_s,
    )
