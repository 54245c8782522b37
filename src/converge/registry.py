"""The model registry: versions, stages, lineage and the validation sample reload re-scores.

"One production version per model" is enforced by the database (a partial unique index), not by
this code; promote and rollback also lock the model's row so concurrent callers queue up instead
of failing on that index.

Promotion is monotone, checked under that lock: an explicit promotion never goes below the
production version, and a promotion announced by a ``model.published`` event only goes above every
version that was ever production, so a late redelivery can undo neither a newer promotion nor a
rollback. Going back is :meth:`Registry.rollback`, and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from converge.contracts import ModelName, Stage
from converge.db import translate_errors
from converge.errors import InvalidInput, ModelNotFound, NoRollbackTarget, StaleVersion

__all__ = ["ModelVersion", "Registry"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = TypeAdapter(ModelName)
_COLUMNS = (
    "name, version, stage, artifact_uri, sha256, metrics, lineage, validation_sample, "
    "report_uri, created_at, promoted_at, archived_at"
)


class ModelVersion(BaseModel):
    """One registered version of a model.

    ``validation_sample`` is ``{"rows": [{feature: value}, ...], "predictions": [{"predict": ...,
    "<class>": probability, ...}, ...]}``: rows the trainer scored and what it got, for reload to
    re-score and compare before promoting.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    stage: Stage
    artifact_uri: str
    sha256: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    validation_sample: dict[str, Any]
    report_uri: str | None = None
    created_at: datetime
    promoted_at: datetime | None = None
    archived_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


def _row(record: asyncpg.Record) -> ModelVersion:
    data = dict(record)
    data["sha256"] = data["sha256"].strip()
    return ModelVersion(**data)


def _check_name(name: str) -> str:
    try:
        return _NAME.validate_python(name)
    except ValidationError as exc:
        raise InvalidInput(f"name: {exc.errors()[0]['msg']}") from None


def _check_sample(sample: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(sample, Mapping):
        raise InvalidInput("validation_sample: must be an object with 'rows' and 'predictions'")
    rows, preds = sample.get("rows"), sample.get("predictions")
    if not isinstance(rows, list) or not isinstance(preds, list):
        raise InvalidInput("validation_sample: 'rows' and 'predictions' must be lists")
    if len(rows) != len(preds):
        raise InvalidInput(
            f"validation_sample: {len(rows)} rows but {len(preds)} predictions; they pair up"
        )
    for field, items in (("rows", rows), ("predictions", preds)):
        if not all(isinstance(item, dict) for item in items):
            raise InvalidInput(f"validation_sample.{field}: every item must be an object")
    return dict(sample)


class Registry:
    """Model versions in Postgres (tables ``models`` and ``model_versions``)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def register(
        self,
        name: str,
        *,
        artifact_uri: str,
        sha256: str,
        metrics: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        validation_sample: Mapping[str, Any] | None = None,
        report_uri: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """Add the next version of ``name`` (creating the model if new), in stage ``staging``."""
        name = _check_name(name)
        sha256 = sha256.lower()
        if not _SHA256.match(sha256):
            raise InvalidInput("sha256: expected 64 hexadecimal characters")
        if not artifact_uri:
            raise InvalidInput("artifact_uri: required")
        if validation_sample is None:
            validation_sample = {"rows": [], "predictions": []}
        sample = _check_sample(validation_sample)
        async with translate_errors("model register"):
            async with self._pool.acquire() as conn:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO models (name, description) VALUES ($1, $2) "
                        "ON CONFLICT (name) DO NOTHING",
                        name,
                        description,
                    )
                    # The row lock serialises concurrent registrations of one model.
                    await conn.execute("SELECT 1 FROM models WHERE name = $1 FOR UPDATE", name)
                    record = await conn.fetchrow(
                        f"""
                        INSERT INTO model_versions (name, version, artifact_uri, sha256, metrics,
                                                    lineage, validation_sample, report_uri)
                        SELECT $1, COALESCE(max(version), 0) + 1, $2, $3, $4, $5, $6, $7
                        FROM model_versions WHERE name = $1
                        RETURNING {_COLUMNS}
                        """,
                        name,
                        artifact_uri,
                        sha256,
                        dict(metrics or {}),
                        dict(lineage or {}),
                        sample,
                        report_uri,
                    )
        return _row(record)

    async def get(self, name: str, version: int) -> ModelVersion:
        """One version; raises ModelNotFound."""
        async with translate_errors("model lookup"):
            record = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM model_versions WHERE name = $1 AND version = $2",
                name,
                int(version),
            )
        if record is None:
            raise ModelNotFound(f"model {name!r} has no version {version}")
        return _row(record)

    async def production(self, name: str) -> ModelVersion | None:
        """The production version of ``name``, or None."""
        async with translate_errors("model lookup"):
            record = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM model_versions WHERE name = $1 AND stage = 'production'",
                name,
            )
        return None if record is None else _row(record)

    async def check_promotion(self, name: str, version: int, *, event: bool = False) -> None:
        """Raise StaleVersion now if promoting ``version`` would go backwards (a cheap early answer;
        :meth:`promote` checks again under the model's lock)."""
        async with translate_errors("model lookup"):
            async with self._pool.acquire() as conn:
                await self._check_forward(conn, name, int(version), event)

    async def promote(self, name: str, version: int, *, event: bool = False) -> ModelVersion:
        """Make ``version`` production; the previous production version becomes archived, in the
        same transaction. Promoting the current production version is a no-op; going backwards
        raises StaleVersion (``event``: see the module docstring)."""
        async with translate_errors("model promote"):
            async with self._pool.acquire() as conn:
                async with conn.transaction():
                    await self._lock_model(conn, name)
                    target = await conn.fetchrow(
                        "SELECT stage FROM model_versions WHERE name = $1 AND version = $2 "
                        "FOR UPDATE",
                        name,
                        int(version),
                    )
                    if target is None:
                        raise ModelNotFound(f"model {name!r} has no version {version}")
                    await self._check_forward(conn, name, int(version), event)
                    if target["stage"] != "production":
                        # Archive first: the unique index is checked row by row.
                        await conn.execute(
                            "UPDATE model_versions SET stage = 'archived', archived_at = now() "
                            "WHERE name = $1 AND stage = 'production'",
                            name,
                        )
                        await conn.execute(
                            "UPDATE model_versions SET stage = 'production', promoted_at = now(), "
                            "archived_at = NULL, rolled_back_at = NULL "
                            "WHERE name = $1 AND version = $2",
                            name,
                            int(version),
                        )
                    record = await conn.fetchrow(
                        f"SELECT {_COLUMNS} FROM model_versions WHERE name = $1 AND version = $2",
                        name,
                        int(version),
                    )
        return _row(record)

    async def rollback(self, name: str) -> ModelVersion:
        """Archive the production version and bring back the one it replaced.

        The target is the most recently archived version that was production before and was not
        itself rolled back, so repeated rollbacks walk back through history instead of toggling.
        Raises NoRollbackTarget when there is none (the current production stays).
        """
        async with translate_errors("model rollback"):
            async with self._pool.acquire() as conn:
                async with conn.transaction():
                    await self._lock_model(conn, name)
                    current = await conn.fetchrow(
                        "SELECT version FROM model_versions WHERE name = $1 AND stage = 'production'",
                        name,
                    )
                    if current is None:
                        raise NoRollbackTarget(f"model {name!r} has no production version")
                    target = await conn.fetchval(
                        """
                        SELECT version FROM model_versions
                        WHERE name = $1 AND stage = 'archived' AND promoted_at IS NOT NULL
                          AND rolled_back_at IS NULL
                        ORDER BY archived_at DESC, version DESC LIMIT 1
                        """,
                        name,
                    )
                    if target is None:
                        raise NoRollbackTarget(
                            f"model {name!r}: no earlier production version to roll back to"
                        )
                    await conn.execute(
                        "UPDATE model_versions SET stage = 'archived', archived_at = now(), "
                        "rolled_back_at = now() WHERE name = $1 AND version = $2",
                        name,
                        current["version"],
                    )
                    await conn.execute(
                        "UPDATE model_versions SET stage = 'production', promoted_at = now(), "
                        "archived_at = NULL WHERE name = $1 AND version = $2",
                        name,
                        target,
                    )
                    record = await conn.fetchrow(
                        f"SELECT {_COLUMNS} FROM model_versions WHERE name = $1 AND version = $2",
                        name,
                        target,
                    )
        return _row(record)

    async def list_models(self) -> list[dict[str, Any]]:
        """Every model with its version count, latest version and production version."""
        async with translate_errors("model list"):
            rows = await self._pool.fetch(
                """
                SELECT m.name, m.description, m.created_at,
                       count(v.version)::int AS versions,
                       max(v.version) AS latest_version,
                       max(v.version) FILTER (WHERE v.stage = 'production') AS production_version
                FROM models m LEFT JOIN model_versions v USING (name)
                GROUP BY m.name ORDER BY m.name
                """
            )
        return [dict(r) for r in rows]

    async def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, newest first (empty if the model does not exist)."""
        async with translate_errors("model list"):
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM model_versions WHERE name = $1 ORDER BY version DESC",
                name,
            )
        return [_row(r) for r in rows]

    async def lineage(self, name: str, version: int) -> dict[str, Any]:
        """The lineage the trainer recorded (data cut-off, split plan, H2O version, ...)."""
        return dict((await self.get(name, version)).lineage)

    @staticmethod
    async def _check_forward(
        conn: asyncpg.Connection, name: str, version: int, event: bool
    ) -> None:
        row = await conn.fetchrow(
            "SELECT max(version) FILTER (WHERE stage = 'production') AS production, "
            "max(version) FILTER (WHERE promoted_at IS NOT NULL) AS highest "
            "FROM model_versions WHERE name = $1",
            name,
        )
        production, highest = row["production"], row["highest"]
        if version == production:
            return
        if production is not None and version < production:
            raise StaleVersion(
                f"model {name!r}: version {version} is older than production version "
                f"{production}; going back is a rollback (POST /admin/models/{name}/rollback)",
                production,
            )
        if event and highest is not None and version <= highest:
            raise StaleVersion(
                f"model {name!r}: version {version} was production before (highest so far "
                f"{highest}); an event does not bring it back, a rollback or promote does",
                production,
            )

    @staticmethod
    async def _lock_model(conn: asyncpg.Connection, name: str) -> None:
        if await conn.fetchval("SELECT 1 FROM models WHERE name = $1 FOR UPDATE", name) is None:
            raise ModelNotFound(f"no model {name!r}")
