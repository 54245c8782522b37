"""Prediction cache keys: a stable hash of the canonical feature JSON.

The key is ``converge:pred:<model>:<version>:<sha256>`` where the digest is taken over the
features serialised with sorted keys (orjson ``OPT_SORT_KEYS``). Python's ``hash()`` is salted per
process, so it would give every replica a different key; sha256 over canonical bytes gives all of
them the same one. Integers are written as floats first: a model sees ``1`` and ``1.0`` alike, so
the cache should too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

KEY_PREFIX = "converge:pred"


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    return value


def canonical_json(features: Mapping[str, Any]) -> bytes:
    """Canonical bytes of a feature mapping: sorted keys, ints as floats, compact."""
    return orjson.dumps(
        {str(k): _normalise(v) for k, v in features.items()}, option=orjson.OPT_SORT_KEYS
    )


def features_digest(features: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(features)).hexdigest()


def cache_key(model: str, version: int, features: Mapping[str, Any]) -> str:
    """The prediction cache key; stable across processes, machines and key order."""
    return f"{KEY_PREFIX}:{model}:{int(version)}:{features_digest(features)}"
