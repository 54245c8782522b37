"""Payloads that cross a boundary: one definition, imported by the functions and the pipelines.

Validation here is the first line of defence: every error names the field that is wrong, and
nothing that could escape its place (a model name with ``/`` or ``..``) gets past these types.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# CloudEvent types and the source the functions use when they emit.
EVENT_FEATURES_INGEST = "features.ingest"
EVENT_MODEL_PUBLISHED = "model.published"
EVENT_ROLLOUT_DECIDED = "rollout.decided"

MAX_FEATURE_KEYS = 512
MAX_KEY_LENGTH = 128
MAX_STRING_VALUE = 1024
MAX_ENTITY_ID = 256
MAX_BATCH = 10_000
# Model versions are Postgres `integer`s: anything larger is a 422 here, not a 500 in the query.
MAX_VERSION = 2**31 - 1

Stage = Literal["staging", "production", "archived"]
FeatureValue = float | int | str | bool | None


def _check_name(value: str) -> str:
    """Model names become S3 keys and cache keys: lowercase words, digits, ``.``, ``_``, ``-``."""
    if value in {".", ".."} or ".." in value:
        raise ValueError("must not contain '..'")
    return value


ModelName = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$"),
    AfterValidator(_check_name),
]
EntityId = Annotated[str, Field(min_length=1, max_length=MAX_ENTITY_ID, pattern=r"^[^\x00-\x1f]+$")]


def _check_features(features: dict[str, Any]) -> dict[str, Any]:
    if len(features) > MAX_FEATURE_KEYS:
        raise ValueError(f"at most {MAX_FEATURE_KEYS} keys, got {len(features)}")
    for key, value in features.items():
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValueError(f"key {key[:40]!r}: length must be 1..{MAX_KEY_LENGTH}")
        if "\x00" in key:
            raise ValueError(f"key {key[:40]!r}: NUL characters are not allowed")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key}: NaN and Infinity are not allowed; send null for missing")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            raise ValueError(f"{key}: integer out of range (|x| <= 2^53)")
        if isinstance(value, str) and (len(value) > MAX_STRING_VALUE or "\x00" in value):
            raise ValueError(f"{key}: strings must be at most {MAX_STRING_VALUE} chars, no NUL")
    return features


Features = Annotated[dict[str, FeatureValue], AfterValidator(_check_features)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureVector(_Strict):
    """One entity's features at one event time (the row of the feature store)."""

    entity_id: EntityId
    event_time: datetime = Field(description="ISO 8601 with a time zone")
    features: Features

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # A field validator, so the error's loc is ("event_time",), not the whole object.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a time zone is required (e.g. 2024-01-31T12:00:00Z)")
        return value


class IngestBatch(_Strict):
    """A batch of feature vectors; also the data of a `features.ingest` CloudEvent."""

    vectors: list[FeatureVector] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(BaseModel):
    received: int
    written: int = Field(description="rows inserted or changed; a redelivery writes 0")
    duplicate: bool = Field(
        default=False, description="this CloudEvent (source, id) was applied before; nothing written"
    )


class ModelRef(_Strict):
    name: ModelName
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="None means production"
    )


class PredictInstance(_Strict):
    """Score explicit features, or the latest features of an entity."""

    features: Features | None = None
    entity_id: EntityId | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PredictInstance:
        if (self.features is None) == (self.entity_id is None):
            raise ValueError("give exactly one of 'features' or 'entity_id'")
        return self


class PredictRequest(_Strict):
    model: ModelName | None = None
    version: int | None = Field(
        default=None, ge=1, description="score with this registered version (default: production)"
    )
    instances: list[PredictInstance] = Field(min_length=1, max_length=MAX_BATCH)
    strict: bool | None = Field(
        default=None,
        description="422 for unknown features or values the model would score as missing; "
        "None means the server's default (CONVERGE_STRICT_INPUTS, off)",
    )
    explain: bool = Field(
        default=False,
        description="add each row's SHAP contributions (GBM, DRF, XRT; binomial or regression): "
        "feature -> contribution in the link space, plus BiasTerm; they sum to the raw prediction",
    )
    leaf_assignment: bool = Field(
        default=False,
        description="add each row's leaf in every tree (GBM, DRF, XRT): tree -> path from the root "
        "('LRR'), trees named T<n>.C<class> as genmodel names them",
    )
    calibrated: bool = Field(
        default=False,
        description="add each row's calibrated class probabilities (binomial GBM or DRF trained "
        "with calibrate_model: Platt or isotonic), as genmodel's calibratedClassProbabilities; "
        "the label and probabilities stay uncalibrated, as in H2O",
    )
    reconstruct: bool = Field(
        default=False,
        description="add each row's GLRM reconstruction (reconstr_<column>: a categorical's level "
        "index, numbers in the input's scale), as genmodel's PredictCsv --glrmReconstruct",
    )
    leaf_node_ids: bool = Field(
        default=False,
        description="add each row's leaf in every tree as H2O's node id (genmodel's "
        "leafNodeAssignmentExtended), trees named as for leaf_assignment",
    )

    @model_validator(mode="before")
    @classmethod
    def _single(cls, data: Any) -> Any:
        """Accept one instance at the top level (``{"features": {...}}``) as a batch of one."""
        if isinstance(data, dict) and "instances" not in data:
            single = {k: data[k] for k in ("features", "entity_id") if k in data}
            rest = {k: v for k, v in data.items() if k not in single}
            return {**rest, "instances": [single]}
        return data


class Prediction(BaseModel):
    """``label``: the class, the regression value, or (models with other outputs: clusters,
    anomaly scores, components, reconstructions) the first of ``outputs``, which then holds
    every output column as genmodel names it."""

    label: str | float | None
    probabilities: dict[str, float] | None = None
    outputs: dict[str, float | None] | None = None
    contributions: dict[str, float] | None = None
    leaf_assignment: dict[str, str | None] | None = None
    leaf_node_ids: dict[str, int] | None = None
    calibrated_probabilities: dict[str, float] | None = None
    reconstruction: dict[str, float] | None = None
    cached: bool = False


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Prediction]
    input_issues: list[dict[str, Any]] | None = Field(
        default=None,
        description="per row: unknown_features and coerced_to_missing (explicit features only)",
    )


class ModelPublished(_Strict):
    """Data of a `model.published` CloudEvent and the body of a reload request."""

    name: ModelName
    version: int = Field(ge=1, le=MAX_VERSION)


class RolloutDecided(_Strict):
    """Data of a `rollout.decided` CloudEvent: predict asks the reload function to carry out a
    promotion it recorded in the registry (the row, not the event, says what to promote)."""

    name: ModelName
    rollout_id: int = Field(ge=1)


class ReloadResult(BaseModel):
    """``promoted``; ``current`` (a redelivery for the production version: nothing to do);
    ``stale`` (older than what was production: acknowledged, not promoted)."""

    name: str
    version: int
    sha256: str | None = None
    stage: Stage | None = None
    validated_rows: int = 0
    outcome: Literal["promoted", "current", "stale"] = "promoted"
    production_version: int | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: a message that names the field or the cause."""

    error: str
    detail: list[dict[str, Any]] | None = None
