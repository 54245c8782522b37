"""One settings object for every process: environment variables with the ``CONVERGE_`` prefix.

Defaults match what ``converge up`` starts on this machine: ``converge up`` writes the addresses it
chose to ``<state_dir>/stack.env``, and that file is read as a fallback after the environment, so a
process started next to a running local stack finds it without any exports.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_state_dir() -> Path:
    """Where the local stack keeps its data: ``$CONVERGE_STATE_DIR`` or ``~/.local/state/converge``."""
    explicit = os.environ.get("CONVERGE_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "converge"


class Settings(BaseSettings):
    """Connection settings and tunables, read from ``CONVERGE_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="CONVERGE_",
        env_file=str(default_state_dir() / "stack.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    # Stack backend for `converge up` and the test fixtures: local processes or Testcontainers.
    stack_backend: str = "auto"

    # Postgres through PgBouncer (transaction pool mode). asyncpg needs statement_cache_size=0 there.
    database_url: SecretStr = SecretStr("postgresql://converge:converge@127.0.0.1:56432/converge")
    # Postgres itself, bypassing PgBouncer (session features: LISTEN, advisory locks, COPY tuning).
    database_direct_url: SecretStr = SecretStr(
        "postgresql://converge:converge@127.0.0.1:55432/converge"
    )
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_command_timeout_s: float = 30.0
    # Deadline of one ingest write (connection, COPY and commit): a hung database is answered with
    # a retryable 503 after this, not after the command timeout. Grows with the batch.
    ingest_timeout_s: float = 0.5
    ingest_timeout_per_row_s: float = 0.001
    # Deadline of predict's feature lookup by entity id: a hung database is a prompt 503.
    feature_read_timeout_s: float = 0.5

    redis_url: str = "redis://127.0.0.1:56379/0"
    cache_ttl_s: int = 300
    # How long a prediction waits for a cache read before it scores without it.
    cache_read_budget_s: float = 0.005
    reload_channel: str = "converge:model-published"

    s3_endpoint_url: str = "http://127.0.0.1:58333"
    s3_access_key: SecretStr = SecretStr("converge")
    s3_secret_key: SecretStr = SecretStr("converge-secret")
    s3_region: str = "us-east-1"
    s3_bucket: str = "converge-models"
    # Longest silence of S3 within one MOJO download (each of its three attempts): a frozen store
    # fails a reload with a 503 after about three times this, not after minutes.
    s3_read_timeout_s: float = 10.0

    h2o_url: str = "http://127.0.0.1:54321"
    h2o_heap: str = "2g"
    # Longest wait for one answer from H2O (a MOJO download of a big model included); a frozen
    # cluster fails the training run after it.
    h2o_request_timeout_s: float = 120.0

    # Serving.
    default_model: str = "demo"
    scorer_backend: str = "auto"
    # What the deployed functions image can score: "native" (the default image, no JVM) or
    # "genmodel" (the variant with a JRE). Training refuses to publish a model it cannot score.
    serving_scorer: Literal["native", "genmodel"] = "native"
    # inline (measured default: small requests scored on the loop, merged), batch, or offload;
    # see BENCHMARKS.md, "Predict function".
    scoring_mode: Literal["inline", "batch", "offload"] = "inline"
    # Credentials, each only where it is checked or used; empty refuses (never opens) the path.
    # Admin API (promote, rollback, reload-model) bearer token: reload function only.
    admin_token: SecretStr = SecretStr("")
    # Key that signs and checks `model.published` events: training and the reload function.
    publish_key: SecretStr = SecretStr("")
    # Bearer for HTTP ingest and key that signs `features.ingest` events: producers and ingest.
    ingest_token: SecretStr = SecretStr("")
    # Key that signs and checks `rollout.decided` events: predict (a canary met its thresholds)
    # and the reload function, which promotes only what the rollouts table says was decided.
    rollout_key: SecretStr = SecretStr("")
    # A signed event whose `time` is further than this from now is refused (replay window).
    event_max_age_s: float = 900.0
    # Knative Eventing OIDC (optional): a bearer JWT with this audience is accepted instead of a
    # signature. The key set is fetched from the JWKS URL (with the token in token_path, if set).
    event_oidc_audience: str = ""
    event_oidc_jwks_url: str = "https://kubernetes.default.svc/openid/v1/jwks"
    event_oidc_issuer: str = ""
    event_oidc_subjects: list[str] = Field(default_factory=list)
    event_oidc_token_path: str = ""
    # Predict: refuse (422) unknown features and values scored as missing, instead of reporting
    # them in `input_issues`; a request's own `strict` wins.
    strict_inputs: bool = False
    registry_poll_s: float = 10.0
    max_body_bytes: int = 1_048_576
    max_batch_rows: int = 10_000
    # Versions other than production kept loaded per replica for requests that pin one.
    max_pinned_versions: int = 4
    # The admin API's MOJO upload (`converge models publish`), base64 in JSON.
    max_publish_bytes: int = 64 * 1_048_576
    # `converge serve`: also serve the Open Inference Protocol over gRPC on this port (0: off).
    grpc_port: int = 0
    grpc_host: str = "127.0.0.1"
    # `serve_function --target predict-grpc`: Prometheus metrics on this HTTP port (0: off).
    grpc_metrics_port: int = 0

    # Where training sends `model.published` (a Knative Broker URL, or the local reload function).
    broker_url: str = "http://127.0.0.1:8080/events"
    event_source: str = "converge"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
