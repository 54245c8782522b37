"""Data sets for the demo and the tests: a generated one with real structure, or the user's file.

The generated set has what makes time-series models honest work: a trend, weekly and yearly
seasonality, entity effects, categorical features with many levels, missing values, and two
targets (numeric ``demand`` and binary ``high_demand``). It is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from converge.contracts import FeatureVector

NUMERIC_TARGET = "demand"
BINARY_TARGET = "high_demand"
_REGIONS = ["north", "south", "east", "west", "central", "coast", "mountain", "islands"]


def synthetic_demand(
    *,
    entities: int = 120,
    days: int = 365,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    missing_rate: float = 0.03,
    seed: int = 7,
) -> list[FeatureVector]:
    """Daily store-demand rows: ``entities * days`` feature vectors, sorted by time."""
    rng = np.random.default_rng(seed)
    n = entities * days
    day = np.repeat(np.arange(days), entities)
    store = np.tile(np.arange(entities), days)
    region = np.array(_REGIONS)[store % len(_REGIONS)]
    # Many levels: a product family per store, drawn from 150 families.
    family = np.tile(rng.integers(0, 150, size=entities), days)
    store_effect = np.tile(rng.normal(0.0, 8.0, size=entities), days)
    family_effect = rng.normal(0.0, 4.0, size=150)[family]

    dates = [start + timedelta(days=int(d)) for d in range(days)]
    weekday = np.array([d.weekday() for d in dates])[day]
    day_of_year = np.array([d.timetuple().tm_yday for d in dates])[day]

    price = np.round(rng.uniform(2.0, 20.0, size=n), 2)
    promo = rng.random(n) < 0.15
    temperature = np.round(
        15 + 10 * np.sin(2 * np.pi * (day_of_year - 100) / 365.25) + rng.normal(0, 3, n), 1
    )
    demand = (
        50.0
        + 0.05 * day  # trend
        + 6.0 * np.isin(weekday, [5, 6])  # weekly: weekends
        + 8.0 * np.sin(2 * np.pi * day_of_year / 365.25)  # yearly
        + store_effect
        + family_effect
        - 1.2 * price
        + 9.0 * promo
        + 0.3 * temperature
        + rng.normal(0.0, 4.0, size=n)
    )
    threshold = np.quantile(demand, 0.7)

    temperature_out: list[float | None] = temperature.tolist()
    price_out: list[float | None] = price.tolist()
    for column in (temperature_out, price_out):
        for i in np.flatnonzero(rng.random(n) < missing_rate):
            column[i] = None

    vectors = []
    for i in range(n):
        features: dict[str, Any] = {
            "region": str(region[i]),
            "family": f"fam_{int(family[i]):03d}",
            "weekday": int(weekday[i]),
            "day_of_year": int(day_of_year[i]),
            "price": price_out[i],
            "promo": bool(promo[i]),
            "temperature": temperature_out[i],
            NUMERIC_TARGET: round(float(demand[i]), 3),
            BINARY_TARGET: "yes" if demand[i] > threshold else "no",
        }
        vectors.append(
            FeatureVector(
                entity_id=f"store-{int(store[i]):04d}",
                event_time=dates[day[i]] + timedelta(hours=12),
                features=features,
            )
        )
    return vectors


class DataFileError(ValueError):
    """A user's data file cannot be read as feature vectors; the message names the file."""


def read_table(path: Path, *, time_column: str, entity_column: str) -> Iterator[FeatureVector]:
    """Feature vectors from a CSV or Parquet file; every other column becomes a feature."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        frame = pd.read_parquet(path) if suffix in {".parquet", ".pq"} else pd.read_csv(path)
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: no such file") from exc
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataFileError(f"{path}: cannot read as {'Parquet' if suffix in {'.parquet', '.pq'} else 'CSV'}: {exc}") from exc
    for column in (time_column, entity_column):
        if column not in frame.columns:
            raise DataFileError(f"{path}: column {column!r} not found (have {list(frame.columns)[:20]})")
    times = pd.to_datetime(frame[time_column], utc=True, errors="coerce")
    if times.isna().any():
        row = int(times.isna().to_numpy().argmax())
        raise DataFileError(f"{path}: row {row + 2}: {time_column!r} is not a date/time")
    features = frame.drop(columns=[time_column, entity_column])
    records = features.astype(object).where(features.notna(), None).to_dict("records")
    for entity, when, record in zip(frame[entity_column].astype(str), times, records, strict=True):
        yield FeatureVector(entity_id=entity, event_time=when.to_pydatetime(), features=record)
