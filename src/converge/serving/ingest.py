"""The ingest service: validate, upsert idempotently, refresh the online copy.

A database fault answers 503 so Knative Eventing redelivers; the upsert is idempotent, so a
redelivered batch writes nothing twice. The online copy is best effort: predict falls back to the
feature store when it is missing.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from converge.contracts import FeatureVector, IngestBatch, IngestResult
from converge.resilience import CircuitBreaker
from converge.serving.http import ServingError, validation_error
from converge.serving.observability import INGESTED
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
        raise validation_error(exc) from None


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

    async def ingest(self, batch: IngestBatch) -> IngestResult:
        INGESTED.inc(len(batch.vectors))
        try:
            written = await self.db_breaker.call(self.feature_store.upsert, batch.vectors)
        except Exception as exc:
            if getattr(exc, "retryable", False) or isinstance(exc, ConnectionError | OSError):
                raise ServingError(503, "feature store unavailable; redeliver later") from None
            raise
        if self.online is not None:
            await self.online.refresh(batch.vectors)
        return IngestResult(received=len(batch.vectors), written=int(written))
