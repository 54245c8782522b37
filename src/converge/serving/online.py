"""The online copy of each entity's latest features in Redis, written by ingest, read by predict.

Keys are ``converge:online:<entity_id>`` hashes with the event time (epoch microseconds) and the
feature JSON. A Lua script writes only if the event time is not older than the stored one, so late
or redelivered vectors never overwrite newer ones. Entries expire (``ttl_s``) so a copy that missed
an update while Redis was away cannot stay stale forever; a miss falls back to the feature store
and back-fills the copy. Every call goes through the Redis breaker and degrades to "no copy".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

from converge.contracts import FeatureVector
from converge.resilience import CircuitBreaker

log = logging.getLogger(__name__)

KEY_PREFIX = "converge:online"

# KEYS[1] = entity key; ARGV = event time (µs), features JSON, ttl seconds.
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 't')
if current and tonumber(current) > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'f', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def online_key(entity_id: str) -> str:
    return f"{KEY_PREFIX}:{entity_id}"


def _micros(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def latest_per_entity(vectors: Iterable[FeatureVector]) -> dict[str, FeatureVector]:
    latest: dict[str, FeatureVector] = {}
    for v in vectors:
        seen = latest.get(v.entity_id)
        if seen is None or v.event_time >= seen.event_time:
            latest[v.entity_id] = v
    return latest


class OnlineFeatures:
    """Latest features per entity in Redis; every failure reads as "not there"."""

    def __init__(self, redis: Any, breaker: CircuitBreaker, ttl_s: int) -> None:
        self.redis = redis
        self.breaker = breaker
        self.ttl_s = ttl_s

    async def get_many(self, entity_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not entity_ids:
            return {}

        async def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for entity_id in entity_ids:
                pipe.hget(online_key(entity_id), "f")
            return await pipe.execute()

        try:
            raw = await self.breaker.call(read)
        except Exception as exc:  # noqa: BLE001 - no copy: the feature store answers
            log.debug("online read skipped: %s", exc)
            return {}
        return {e: orjson.loads(r) for e, r in zip(entity_ids, raw, strict=True) if r is not None}

    async def refresh(self, vectors: Iterable[FeatureVector]) -> bool:
        """Write the newest vector of each entity (if newer than the copy); False if Redis is away."""
        latest = latest_per_entity(vectors)
        if not latest:
            return True

        async def write() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for entity_id, v in latest.items():
                pipe.eval(
                    _SET_IF_NEWER,
                    1,
                    online_key(entity_id),
                    _micros(v.event_time),
                    orjson.dumps(v.features),
                    self.ttl_s,
                )
            await pipe.execute()

        try:
            await self.breaker.call(write)
        except Exception as exc:  # noqa: BLE001 - predict falls back to the feature store
            log.warning("online copy not refreshed: %s", exc)
            return False
        return True
