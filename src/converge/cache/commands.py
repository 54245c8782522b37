"""What the cache needs from a Redis client, and redis-py behind that protocol.

The hot path uses :class:`converge.cache.resp.RespClient`; :class:`RedisPyCommands` serves where it
cannot connect (a unix socket URL). Both have the two commands of :class:`CacheCommands`.
"""

from __future__ import annotations

from typing import Any, Protocol


class CacheCommands(Protocol):
    """What the cache needs from a Redis client: the two commands it sends."""

    async def mget(self, keys: list[str]) -> list[Any]: ...

    async def eval(self, script: str, keys: list[str], args: list[Any]) -> Any: ...


class RedisPyCommands:
    """The two commands the cache sends, through a redis-py client (where :mod:`converge.cache.resp`
    cannot connect, e.g. a unix socket URL)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def mget(self, keys: list[str]) -> list[Any]:
        return await self.redis.mget(keys)

    async def eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self.redis.eval(script, len(keys), *keys, *args)
