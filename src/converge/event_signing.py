"""Signed CloudEvents: an event is believed only if its producer holds the key for its type.

A Knative Broker accepts any event from anything that reaches its ingress, so without Eventing's
OIDC the receiver cannot tell the trainer from any other pod. Producers therefore sign each event
with HMAC-SHA256 over its id, type, source, time and data, and send the signature as the
``convergesig`` extension attribute (Brokers and Triggers pass extension attributes through
unchanged). The receiver recomputes it with its own copy of the key, compares in constant time and
refuses an event whose ``time`` is outside the freshness window.

What is signed survives a Broker's re-encoding: the time as epoch microseconds (a Broker may
rewrite ``+00:00`` as ``Z`` or add nanosecond digits), the data as sorted-key JSON of its decoded
value (structured mode becomes binary mode on delivery), all in one JSON array (no ambiguity
between fields).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from converge.errors import PermissionDenied, Unauthenticated

SIGNATURE_ATTRIBUTE = "convergesig"
_SCHEME = "v1="
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: str) -> datetime:
    """An RFC 3339 time with a zone (``Z`` or an offset); nanoseconds are cut to microseconds."""
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    fraction = _FRACTION.search(text)
    if fraction:  # datetime keeps microseconds; a Broker may send nanoseconds
        digits = fraction.group(1)[:6].ljust(6, "0")
        text = f"{text[: fraction.start()]}.{digits}{text[fraction.end() :]}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("time needs a zone")
    return moment


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def canonical(event_id: str, event_type: str, source: str, time: str, data: Any) -> bytes:
    return orjson.dumps(
        [event_id, event_type, source, _micros(parse_time(time)), data],
        option=orjson.OPT_SORT_KEYS,
    )


def sign(key: str, event_id: str, event_type: str, source: str, time: str, data: Any) -> str:
    """The ``convergesig`` value for an event with these attributes and (decoded) data."""
    digest = hmac.new(
        key.encode(), canonical(event_id, event_type, source, time, data), hashlib.sha256
    )
    return _SCHEME + digest.hexdigest()


def verify(
    key: str,
    signature: str | None,
    *,
    event_id: str,
    event_type: str,
    source: str,
    time: str | None,
    data: Any,
    max_age_s: float,
    now: datetime | None = None,
) -> None:
    """Raise unless the signature matches and ``time`` is fresh: :class:`Unauthenticated` when
    unsigned, :class:`PermissionDenied` when wrong or expired."""
    if not signature:
        raise Unauthenticated(f"unsigned CloudEvent: the {SIGNATURE_ATTRIBUTE} attribute is required")
    if not time:
        raise Unauthenticated("CloudEvent without a time attribute: signed events carry one")
    try:
        expected = sign(key, event_id, event_type, source, time, data)
        moment = parse_time(time)
    except (ValueError, TypeError, orjson.JSONEncodeError):
        raise Unauthenticated(f"CloudEvent time {time[:40]!r} is not an RFC 3339 time") from None
    if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise PermissionDenied("CloudEvent signature does not match")
    age = ((now or datetime.now(UTC)) - moment).total_seconds()
    if abs(age) > max_age_s:
        raise PermissionDenied(
            f"CloudEvent time is {age:.0f} s from now; accepted within {max_age_s:.0f} s"
        )


def signed_envelope(
    key: str, event_type: str, source: str, data: Any, event_id: str, time: str | None = None
) -> dict[str, Any]:
    """A structured-mode event (``application/cloudevents+json``) with its signature."""
    time = time or _now()
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": source,
        "id": event_id,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
        SIGNATURE_ATTRIBUTE: sign(key, event_id, event_type, source, time, data),
    }


def signed_headers(
    key: str, event_type: str, source: str, data: Any, event_id: str, time: str | None = None
) -> dict[str, str]:
    """Binary-mode headers (``ce-*``) for a signed event; the body is ``data`` as JSON."""
    envelope = signed_envelope(key, event_type, source, data, event_id, time)
    headers = {
        f"ce-{name}": value
        for name, value in envelope.items()
        if name not in ("data", "datacontenttype")
    }
    return {**headers, "content-type": "application/json"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
