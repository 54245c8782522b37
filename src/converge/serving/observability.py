"""JSON structured logs with request ids, and the Prometheus metrics every function exports."""

from __future__ import annotations

import contextvars
import logging
import random
import sys
import time

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

_random = random.Random()
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

PREDICT_LATENCY = Histogram(
    "converge_predict_latency_seconds",
    "Time to answer a predict request (validation, features, cache, scoring).",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PREDICT_ROWS = Counter("converge_predict_rows_total", "Rows scored or served from cache.")
CACHE_HITS = Counter("converge_cache_hits_total", "Prediction cache hits.")
CACHE_MISSES = Counter("converge_cache_misses_total", "Prediction cache misses.")
MODEL_VERSION = Gauge("converge_model_version", "Version of the model being served.", ["model"])
RELOADS = Counter(
    "converge_model_reloads_total",
    "Model loads and reload requests by outcome.",
    ["outcome"],
)
INPUT_ISSUES = Counter(
    "converge_predict_input_issues_total",
    "Request features the model does not know, or values it would score as missing.",
    ["model", "kind"],
)
INGESTED = Counter("converge_ingest_vectors_total", "Feature vectors received by ingest.")
INGEST_DUPLICATES = Counter(
    "converge_ingest_duplicate_events_total",
    "features.ingest events applied before (same source and id): acknowledged, nothing written.",
)
ERRORS = Counter("converge_http_errors_total", "Error responses by status.", ["status"])
ROLLOUT_REQUESTS = Counter(
    "converge_rollout_requests_total",
    "Requests scored by each version of a model under a canary or shadow rollout, by outcome.",
    ["model", "version", "outcome"],
)
ROLLOUT_GAP = Gauge(
    "converge_rollout_shadow_gap",
    "Mean gap between a shadow candidate's answers and production's (probability, or relative value).",
    ["model", "version"],
)
ROLLOUT_SECONDS = Histogram(
    "converge_rollout_scoring_seconds",
    "Scoring time per version of a model under a canary or shadow rollout.",
    ["model", "version"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the request id of the current request."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id.get(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


_configured = False


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the ``converge`` loggers (idempotent)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("converge")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    _configured = True


def new_request_id(incoming: str | None) -> str:
    """Keep a sane incoming id (from the gateway or Knative), otherwise make one."""
    if incoming and len(incoming) <= 128 and incoming.isprintable():
        return incoming
    # Not uuid4: its urandom syscall costs more than the rest of a cached predict on some VMs.
    return f"{_random.getrandbits(96):024x}"
