"""The feature store: idempotent COPY-speed upserts, latest-per-entity reads, point-in-time
training sets.

Idempotency is what makes "answer 5xx and let Knative redeliver" safe: a batch is written in one
transaction (COPY into a temp table, then one ``INSERT ... ON CONFLICT DO UPDATE``), so a fault
leaves nothing behind, and a redelivered batch changes nothing and reports 0 rows written.

The ingest function writes through :meth:`FeatureStore.write`, which adds two guarantees for
CloudEvents: the same event (source and id) is applied once, and a write never replaces a newer
one for the same ``(entity_id, event_time)``. "Newer" is the order of the writes, not of the
data: the event's ``time`` then its ``id`` (a plain HTTP write: its transaction's start time), kept
in ``written_time``/``written_id``. Knative may deliver a correction before the original; the
original then changes nothing.

Point in time: a training set "as of" T contains rows with ``ingested_at <= T``. A vector that is
corrected later gets a new ``ingested_at`` (the old value is not kept), so an old cut-off never sees
a value from its future; it loses that row instead. ``ingested_at`` is the start time of the
writing transaction, so a cut-off is reproducible once it is older than the longest ingest
transaction (seconds): a batch still in flight at T becomes visible only after it commits.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from converge.contracts import FeatureVector
from converge.db import bounded_connection, once_more_if_dropped, translate_errors
from converge.errors import InvalidInput

__all__ = ["FeatureChunk", "FeatureStore", "IngestEvent", "WriteResult"]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")


@dataclass(slots=True)
class FeatureChunk:
    """One chunk of a training set, column-oriented: ``features[i]`` is the dict of row ``i``.

    Plain Python lists, so the trainer chooses the frame library: :meth:`to_pandas` (one column per
    feature key) and :meth:`to_arrow` convert without a per-row Python loop on our side.
    """

    entity_id: list[str] = field(default_factory=list)
    event_time: list[datetime] = field(default_factory=list)
    ingested_at: list[datetime] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entity_id)

    def to_vectors(self) -> list[FeatureVector]:
        """As validated contracts (slow for big chunks; meant for tests and small sets)."""
        return [
            FeatureVector(entity_id=e, event_time=t, features=f)
            for e, t, f in zip(self.entity_id, self.event_time, self.features, strict=True)
        ]

    def to_pandas(self) -> Any:
        """A DataFrame: ``entity_id``, ``event_time``, ``ingested_at`` then one column per key."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.features)
        keys = pd.DataFrame(
            {
                "entity_id": self.entity_id,
                "event_time": pd.to_datetime(self.event_time, utc=True),
                "ingested_at": pd.to_datetime(self.ingested_at, utc=True),
            }
        )
        clash = [c for c in frame.columns if c in keys.columns]
        if clash:
            frame = frame.rename(columns={c: f"feature_{c}" for c in clash})
        return pd.concat([keys, frame], axis=1)

    def to_arrow(self) -> Any:
        """A pyarrow Table with the same columns as :meth:`to_pandas`."""
        import pyarrow as pa

        return pa.Table.from_pandas(self.to_pandas(), preserve_index=False)


@dataclass(frozen=True, slots=True)
class IngestEvent:
    """The CloudEvent a batch came in: its identity (source, id) and its place in the order."""

    source: str
    id: str
    time: datetime


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Rows inserted or changed (their keys), or ``duplicate``: the event was applied before."""

    written: list[tuple[str, datetime]]
    duplicate: bool = False


class FeatureStore:
    """Reads and writes the ``features`` table through an asyncpg pool (see :mod:`converge.db`)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        table: str = "features",
        write_timeout_s: float = 30.0,
        write_timeout_per_row_s: float = 0.0,
        read_timeout_s: float = 30.0,
    ) -> None:
        # `table` exists for benchmarks that compare index variants side by side; it is code
        # configuration, validated as a plain identifier, never a value from a request.
        if not _IDENT.match(table):
            raise InvalidInput(f"table: {table!r} is not a plain [schema.]identifier")
        self._pool = pool
        self._table = table
        # An upsert's deadline (see converge.db.bounded_connection): a base plus a share per row.
        self._write_timeout = (write_timeout_s, write_timeout_per_row_s)
        self._read_timeout = read_timeout_s  # of latest_many, the lookup a request waits for

    # -- writes ------------------------------------------------------------------------------
    async def upsert(self, vectors: Sequence[FeatureVector]) -> int:
        """Insert or update ``vectors`` in one transaction; returns rows inserted or changed.

        A row whose vector is unchanged is not touched (a redelivery returns 0). Within one call
        the last vector for an ``(entity_id, event_time)`` wins. Rows are written in key order,
        so concurrent batches with overlapping keys queue on row locks instead of deadlocking. Raises DatabaseUnavailable on a
        connection fault or past its deadline, in which case nothing of this call was committed,
        unless the fault hit after the commit was sent: then the retry finds the rows and writes 0.
        """
        return len((await self.write(vectors)).written)

    async def write(
        self,
        vectors: Sequence[FeatureVector],
        *,
        event: IngestEvent | None = None,
        ledger_days: float = 1.0,
    ) -> WriteResult:
        """Like :meth:`upsert`, in write order (module docstring) and once per event.

        The event's ledger row is inserted in the same transaction as its feature rows: a fault
        rolls back both, so a redelivery after a 5xx writes, and a redelivery after a success
        finds the ledger row and writes nothing. Ledger rows older than ``ledger_days`` go.
        """
        records = _latest_records(vectors)
        if not records:
            return WriteResult([])
        return await once_more_if_dropped(lambda: self._write(records, event, ledger_days))

    async def _write(
        self, records: list[tuple[str, datetime, Any]], event: IngestEvent | None, ledger_days: float
    ) -> WriteResult:
        table = self._table
        base, per_row = self._write_timeout
        timeout = base + per_row * len(records)
        async with bounded_connection(self._pool, timeout, "feature upsert") as conn:
            async with conn.transaction():
                if event is not None:
                    fresh = await conn.fetchval(
                        "INSERT INTO ingest_events (source, event_id, event_time, rows) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                        event.source,
                        event.id,
                        event.time,
                        len(records),
                    )
                    if not fresh:
                        return WriteResult([], duplicate=True)
                    await conn.execute(
                        "DELETE FROM ingest_events WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
                        "ingest_events WHERE received_at < now() - make_interval(secs => $1) "
                        "LIMIT 100))",
                        ledger_days * 86400.0,
                    )
                await _copy_to_temp(conn, records)
                rows = await conn.fetch(
                    f"""
                    INSERT INTO {table} AS f
                        (entity_id, event_time, feature_vector, written_time, written_id)
                    SELECT entity_id, event_time, feature_vector, COALESCE($1::timestamptz, now()), $2::text
                    FROM _ingest ORDER BY entity_id, event_time
                    ON CONFLICT (entity_id, event_time) DO UPDATE
                        SET feature_vector = excluded.feature_vector,
                            ingested_at = now(),
                            written_time = excluded.written_time,
                            written_id = excluded.written_id
                        WHERE f.feature_vector IS DISTINCT FROM excluded.feature_vector
                          AND (COALESCE(f.written_time, '-infinity'), COALESCE(f.written_id, ''))
                              <= (excluded.written_time, excluded.written_id)
                    RETURNING entity_id, event_time
                    """,
                    None if event is None else event.time,
                    "" if event is None else event.id,
                )
        return WriteResult([(r["entity_id"], r["event_time"]) for r in rows])

    # -- online reads ----------------------------------------------------------------------------
    async def latest(self, entity_id: str) -> FeatureVector | None:
        """The newest (by ``event_time``) vector of one entity; a backward PK index scan."""
        async with translate_errors("feature lookup"):
            row = await self._pool.fetchrow(
                f"SELECT entity_id, event_time, feature_vector FROM {self._table} "
                "WHERE entity_id = $1 ORDER BY event_time DESC LIMIT 1",
                entity_id,
            )
        return None if row is None else _vector(row)

    async def latest_many(self, entity_ids: Sequence[str]) -> dict[str, FeatureVector]:
        """The newest vector of each entity that has one (missing entities are absent). Past the
        read deadline (connection included) it raises DatabaseUnavailable."""
        ids = list(dict.fromkeys(entity_ids))
        if not ids:
            return {}
        async with bounded_connection(self._pool, self._read_timeout, "feature lookup") as conn:
            rows = await conn.fetch(
                f"""
                SELECT l.entity_id, l.event_time, l.feature_vector
                FROM unnest($1::text[]) AS e(id)
                CROSS JOIN LATERAL (
                    SELECT entity_id, event_time, feature_vector FROM {self._table}
                    WHERE entity_id = e.id ORDER BY event_time DESC LIMIT 1
                ) AS l
                """,
                ids,
            )
        return {r["entity_id"]: _vector(r) for r in rows}

    async def count(self) -> int:
        async with translate_errors("feature count"):
            return int(await self._pool.fetchval(f"SELECT count(*) FROM {self._table}"))

    # -- training ---------------------------------------------------------------------------
    async def training_set(
        self, as_of: datetime, *, chunk_rows: int = 50_000
    ) -> AsyncIterator[FeatureChunk]:
        """Stream every row with ``ingested_at <= as_of`` as :class:`FeatureChunk` s.

        One REPEATABLE READ, read-only transaction holds one snapshot for the whole stream, and a
        server-side cursor fetches ``chunk_rows`` at a time, so rows committed while the stream
        runs are never seen and memory stays bounded. Rows come ordered by
        ``(event_time, entity_id)``, so the same cut-off gives the same sequence. The transaction
        pins one server connection in PgBouncer for the stream's lifetime: consume it, or close
        it (``contextlib.aclosing``) when stopping early.
        """
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise InvalidInput("as_of: a time zone is required")
        if chunk_rows < 1:
            raise InvalidInput("chunk_rows: must be >= 1")
        query = (
            f"SELECT entity_id, event_time, ingested_at, feature_vector FROM {self._table} "
            "WHERE ingested_at <= $1 ORDER BY event_time, entity_id"
        )
        async with translate_errors("training set read"):
            async with self._pool.acquire() as conn:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    cursor = await conn.cursor(query, as_of)
                    while True:
                        rows = await cursor.fetch(chunk_rows)
                        if not rows:
                            break
                        yield FeatureChunk(
                            entity_id=[r[0] for r in rows],
                            event_time=[r[1] for r in rows],
                            ingested_at=[r[2] for r in rows],
                            features=[r[3] for r in rows],
                        )
                        if len(rows) < chunk_rows:
                            break


async def _copy_to_temp(conn: asyncpg.Connection, records: list[tuple[str, datetime, Any]]) -> None:
    """COPY ``records`` into ``_ingest``, a temp table that lives and dies with the transaction
    (safe under PgBouncer's transaction pooling)."""
    await conn.execute(
        "CREATE TEMP TABLE _ingest (entity_id text, event_time timestamptz, "
        "feature_vector jsonb) ON COMMIT DROP"
    )
    await conn.copy_records_to_table(
        "_ingest", records=records, columns=("entity_id", "event_time", "feature_vector")
    )


def _latest_records(vectors: Sequence[FeatureVector]) -> list[tuple[str, datetime, Any]]:
    """COPY records, the last vector winning for a repeated ``(entity_id, event_time)``."""
    latest: dict[tuple[str, datetime], dict[str, Any]] = {}
    for v in vectors:
        if not isinstance(v, FeatureVector):
            raise InvalidInput(f"vectors: expected FeatureVector, got {type(v).__name__}")
        latest[(v.entity_id, v.event_time)] = v.features
    return [(e, t, f) for (e, t), f in latest.items()]


def _vector(row: asyncpg.Record) -> FeatureVector:
    # Rows were validated on the way in; skip re-validation on the hot read path.
    return FeatureVector.model_construct(
        entity_id=row["entity_id"], event_time=row["event_time"], features=row["feature_vector"]
    )
