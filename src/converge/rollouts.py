"""Canary and shadow rollouts in the registry (table ``rollouts``, migration 0004).

A rollout names a candidate version of a model and how it is tried against production (the
``baseline``): ``canary`` sends ``percent`` of the traffic to it, ``shadow`` scores every request
with both and answers with production. Thresholds decide the end: the candidate is rolled back
as soon as it crosses one, and promoted once it has answered ``min_requests`` within all of them.
The admin API starts and stops rollouts; predict replicas record the decision (``end``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from converge.db import translate_errors
from converge.errors import Conflict, InvalidInput, ModelNotFound

Mode = Literal["canary", "shadow"]
Decision = Literal["promote", "promoted", "rolled_back", "stopped"]
_COLUMNS = (
    "id, name, candidate, baseline, mode, percent, thresholds, state, reason, stats, "
    "created_at, decided_at"
)


class Thresholds(BaseModel):
    """Defaults suit a few hundred requests a minute; every one can be set per rollout."""

    model_config = ConfigDict(extra="forbid")
    max_error_rate: float = Field(0.02, ge=0, le=1, description="candidate failures / requests")
    max_latency_ratio: float = Field(
        3.0, gt=0, description="candidate's median answer time over production's"
    )
    max_drift: float = Field(
        0.1, ge=0, description="mean prediction gap to production (probability, or relative value)"
    )
    min_requests: int = Field(500, ge=1, le=10_000_000, description="candidate answers before promotion")
    min_errors: int = Field(3, ge=1, description="failures before the error rate can roll back")


class Rollout(BaseModel):
    id: int
    name: str
    candidate: int
    baseline: int
    mode: Mode
    percent: float
    thresholds: Thresholds
    state: str
    reason: str | None = None
    stats: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    decided_at: datetime | None = None


def _row(record: Any) -> Rollout:
    return Rollout.model_validate(dict(record))


class Rollouts:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def start(
        self, name: str, candidate: int, mode: Mode, percent: float, thresholds: Thresholds
    ) -> Rollout:
        """Begin trying ``candidate`` against the production version; one rollout at a time."""
        if mode == "canary" and not 0 < percent < 100:
            raise InvalidInput("canary: the share must be above 0 and below 100 percent")
        async with translate_errors("rollout start"):
            async with self._pool.acquire() as conn:
                async with conn.transaction():
                    baseline = await conn.fetchval(
                        "SELECT version FROM model_versions WHERE name = $1 AND stage = 'production'",
                        name,
                    )
                    if baseline is None:
                        raise ModelNotFound(f"model {name!r} has no production version")
                    exists = await conn.fetchval(
                        "SELECT 1 FROM model_versions WHERE name = $1 AND version = $2", name, candidate
                    )
                    if not exists:
                        raise ModelNotFound(f"model {name!r} has no version {candidate}")
                    if candidate == baseline:
                        raise Conflict(f"version {candidate} of {name!r} is production already")
                    active = await conn.fetchval(
                        "SELECT candidate FROM rollouts WHERE name = $1 AND state = 'active' FOR UPDATE",
                        name,
                    )
                    if active is not None:
                        raise Conflict(
                            f"model {name!r} is already trying version {active}; stop that rollout first"
                        )
                    record = await conn.fetchrow(
                        f"""INSERT INTO rollouts (name, candidate, baseline, mode, percent, thresholds)
                            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}""",
                        name, candidate, baseline, mode,
                        100.0 if mode == "shadow" else float(percent),
                        thresholds.model_dump(),
                    )  # fmt: skip
        return _row(record)

    async def active(self, name: str) -> Rollout | None:
        """The rollout in progress for ``name`` (what predict routes by), or None."""
        async with translate_errors("rollout lookup"):
            record = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM rollouts WHERE name = $1 AND state = 'active'", name
            )
        return None if record is None else _row(record)

    async def get(self, rollout_id: int) -> Rollout | None:
        async with translate_errors("rollout lookup"):
            record = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM rollouts WHERE id = $1", rollout_id
            )
        return None if record is None else _row(record)

    async def latest(self, name: str) -> Rollout | None:
        async with translate_errors("rollout lookup"):
            record = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM rollouts WHERE name = $1 ORDER BY id DESC LIMIT 1", name
            )
        return None if record is None else _row(record)

    async def end(
        self, rollout_id: int, state: Decision, reason: str, stats: dict[str, Any]
    ) -> bool:
        """Record a decision once: False if another replica (or an admin) decided first."""
        async with translate_errors("rollout decision"):
            done = await self._pool.execute(
                "UPDATE rollouts SET state = $2, reason = $3, stats = $4, decided_at = now() "
                "WHERE id = $1 AND state = 'active'",
                rollout_id, state, reason, stats,
            )  # fmt: skip
        return done.endswith(" 1")

    async def mark(self, rollout_id: int, state: Decision, reason: str) -> None:
        """Move a decided rollout on (``promote`` -> ``promoted``), keeping its statistics."""
        async with translate_errors("rollout decision"):
            await self._pool.execute(
                "UPDATE rollouts SET state = $2, reason = $3, decided_at = now() WHERE id = $1",
                rollout_id, state, reason,
            )  # fmt: skip
