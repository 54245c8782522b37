"""Send feature vectors to the ingest function as ``features.ingest`` CloudEvents (binary mode).

Used by ``converge ingest FILE`` and the demo: batches are posted the way a producer behind Knative
Eventing would, signed with the ingest token, and a 5xx is retried like a redelivery of the same
event (same id: ingest is idempotent).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
import orjson

from converge.contracts import EVENT_FEATURES_INGEST, FeatureVector
from converge.errors import ConvergeError
from converge.event_signing import signed_headers


class IngestRejected(ConvergeError):
    """The ingest function refused a batch; the message carries its status and answer."""


def batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def send_ingest_events(
    base_url: str,
    vectors: Sequence[FeatureVector],
    batch_rows: int,
    progress: Callable[[int], None],
    key: str,
) -> int:
    """POST each batch as a signed binary-mode ``features.ingest`` CloudEvent; returns rows
    written."""
    written = 0
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for batch in batches(vectors, batch_rows):
            data = {"vectors": [v.model_dump(mode="json") for v in batch]}
            body = orjson.dumps(data)
            headers = signed_headers(
                key, EVENT_FEATURES_INGEST, "converge/cli", data, secrets.token_hex(16)
            )
            for attempt in range(5):  # a 5xx asks for redelivery, as Knative Eventing would
                response = client.post("/events", content=body, headers=headers)
                if response.status_code < 500:
                    break
                time.sleep(0.5 * (attempt + 1))
            if response.status_code != 200:
                raise IngestRejected(f"ingest answered {response.status_code}: {response.text[:200]}")
            written += int(response.json().get("written", 0))
            progress(len(batch))
    return written
