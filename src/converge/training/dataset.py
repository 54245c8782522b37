"""The training set as one DataFrame: a point-in-time snapshot of the feature store, or a file.

Training must see exactly what existed at the cut-off, so the feature store is read in one
consistent snapshot (rows ingested after ``as_of`` are invisible), chunk by chunk, over a direct
Postgres connection (``database_direct_url``). A CSV or
Parquet file with ``entity_id``, ``event_time`` and feature columns is the offline alternative.
Event times become epoch milliseconds, the form H2O and MOJOs use.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from converge.errors import InvalidInput
from converge.settings import Settings
from converge.training.loop import run_coroutine
from converge.training.trainer import ENTITY_COLUMN, TIME_COLUMN

# Columns the feature store adds that are never features.
BOOKKEEPING = ("ingested_at",)


def _epoch_ms(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.int64)
    ts = pd.to_datetime(column, utc=True)
    return (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Epoch-ms event times, bookkeeping columns dropped, rows in (event_time, entity_id) order."""
    missing = [c for c in (ENTITY_COLUMN, TIME_COLUMN) if c not in frame.columns]
    if missing:
        raise InvalidInput(f"training set lacks column(s) {missing}")
    frame = frame.drop(columns=[c for c in BOOKKEEPING if c in frame.columns])
    frame = frame.assign(**{TIME_COLUMN: np.asarray(_epoch_ms(frame[TIME_COLUMN]), dtype=np.int64)})
    return frame.sort_values([TIME_COLUMN, ENTITY_COLUMN], kind="stable").reset_index(drop=True)


async def _from_store(settings: Settings, as_of: datetime, chunk_rows: int) -> pd.DataFrame:
    from converge.db import create_pool
    from converge.features import FeatureStore

    # A snapshot stream holds one server connection for its whole life (REPEATABLE READ plus a
    # server-side cursor, a session feature): go to Postgres directly, not through PgBouncer.
    pool = await create_pool(
        settings, dsn=settings.database_direct_url.get_secret_value(), min_size=1, max_size=1
    )
    try:
        parts = [
            chunk.to_pandas()
            async for chunk in FeatureStore(pool).training_set(as_of, chunk_rows=chunk_rows)
        ]
    finally:
        await pool.close()
    if not parts:
        return pd.DataFrame(columns=[ENTITY_COLUMN, TIME_COLUMN])
    return pd.concat(parts, ignore_index=True)


def from_feature_store(
    settings: Settings, as_of: datetime, chunk_rows: int = 50_000
) -> pd.DataFrame:
    """Every row ingested up to ``as_of``, read in one snapshot."""
    return normalise(run_coroutine(_from_store(settings, as_of, chunk_rows)))


def from_file(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet training set."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"training file {path} does not exist")
    frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    return normalise(frame)
