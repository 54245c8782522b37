"""The ingest service: validate, upsert idempotently, refresh the online copy.

A database fault answers 503 so Knative Eventing redelivers; the write is idempotent, so a
redelivered batch writes nothing twice: an event (source, id) is applied once, and no write
replaces a newer one for the same row (:mod:`converge.features`). Only rows actually written
refresh the online copy, which is best effort: predict falls back to the feature store.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from converge.contracts import FeatureVector, IngestBatch, IngestResult
from converge.errors import invalid_fields, outage_of
from converge.features import IngestEvent
from converge.resilience import CircuitBreaker
from converge.serving.observability import INGEST_DUPLICATES, INGESTED
from converge.serving.online import OnlineFeatures


def parse_batch(data: Any) -> IngestBatch:
    """``{"vectors": [...]}``, a bare list of vectors, or one vector."""
    try:
        if isinstance(data, dict) and "vectors" in data:
            return IngestBatch.model_validate(data)
        if isinstance(data, list):
            return IngestBatch.model_validate({"vectors": data})
        return IngestBatch(vectors=[FeatureVector.model_validate(data)])
    except ValidationError as exc:
        raise invalid_fields(exc) from None


class IngestService:
    def __init__(
        self,
        *,
        feature_store: Any,
        db_breaker: CircuitBreaker,
        online: OnlineFeatures | None,
    ) -> None:
        self.feature_store = feature_store
        self.db_breaker = db_breaker
        self.online = online

    async def ingest(self, batch: IngestBatch, event: IngestEvent | None = None) -> IngestResult:
        INGESTED.inc(len(batch.vectors))
        with outage_of("feature store", "redeliver later"):
            result = await self.db_breaker.call(
                self.feature_store.write, batch.vectors, event=event
            )
        if result.duplicate:
            INGEST_DUPLICATES.inc()
        if self.online is not None and result.written:
            keys = set(result.written)
            await self.online.refresh(
                [v for v in batch.vectors if (v.entity_id, v.event_time) in keys]
            )
        return IngestResult(
            received=len(batch.vectors), written=len(result.written), duplicate=result.duplicate
        )
