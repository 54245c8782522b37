"""Redis cache-aside for predictions, keyed by a stable hash of the canonical feature JSON.

The key is ``converge:pred:<model>:<version>:<sha256>`` where the digest is taken over the
features serialised with sorted keys (orjson ``OPT_SORT_KEYS``). Python's ``hash()`` is salted per
process, so it would give every replica a different key; sha256 over canonical bytes gives all of
them the same one. Integers are written as floats first: a model sees ``1`` and ``1.0`` alike, so
the cache should too.

Every Redis call goes through a circuit breaker and degrades to "no cache": a dead Redis costs a
miss, never an error.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from converge.resilience import CircuitBreaker

log = logging.getLogger(__name__)

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


class PredictionCache:
    """Look-aside cache of JSON predictions; every failure reads as a miss."""

    def __init__(self, redis: Any, breaker: CircuitBreaker, ttl_s: int) -> None:
        self.redis = redis
        self.breaker = breaker
        self.ttl_s = ttl_s

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        """Decoded values in key order; ``None`` for misses and when Redis is unavailable."""
        if not keys:
            return []
        try:
            raw = await self.breaker.call(self.redis.mget, list(keys))
        except Exception as exc:  # noqa: BLE001 - any cache fault is a miss
            log.debug("cache read skipped: %s", exc)
            return [None] * len(keys)
        out: list[Any | None] = []
        for item in raw:
            if item is None:
                out.append(None)
                continue
            try:
                out.append(orjson.loads(item))
            except orjson.JSONDecodeError:
                out.append(None)
        return out

    async def set_many(self, items: Mapping[str, Any]) -> bool:
        """Store values with the TTL in one round trip; False if Redis was unavailable."""
        if not items:
            return True

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, orjson.dumps(value), ex=self.ttl_s)
            await pipe.execute()

        try:
            await self.breaker.call(write)
        except Exception as exc:  # noqa: BLE001 - a failed write only costs a future miss
            log.debug("cache write skipped: %s", exc)
            return False
        return True
