"""Redis look-aside cache for predictions; every failure reads as a miss.

Every Redis call goes through a circuit breaker and degrades to "no cache": a dead Redis costs a
miss, never an error. A read waits at most ``read_budget_s`` (a few milliseconds, against well
under one for a healthy Redis on the same network): a hung or slow Redis then costs a request
that budget, not the client's timeout, until the breaker opens and reads stop going out at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from converge.cache.commands import CacheCommands
from converge.resilience import CircuitBreaker

log = logging.getLogger(__name__)

# Writes wait this long to share one Redis call with their neighbours; a repeat inside the window
# is just a miss, so nothing is lost but a little CPU per request at moderate rates.
WRITE_BEHIND_S = 0.005

# One command for a whole batch of writes: far cheaper to encode than a pipeline of SETs.
_SET_ALL = """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
end
return #KEYS
"""


class PredictionCache:
    """Look-aside cache of JSON predictions; every failure reads as a miss.

    Concurrent requests share round trips: reads issued in the same event-loop iteration go out
    as one ``MGET``, writes are buffered for a few milliseconds and flushed as one script call. Under load that turns two
    Redis calls per request into two per loop iteration.
    """

    def __init__(
        self, commands: CacheCommands, breaker: CircuitBreaker, ttl_s: int, read_budget_s: float = 0.005
    ) -> None:
        """``commands``: a :class:`converge.cache.resp.RespClient` or :class:`RedisPyCommands`."""
        self.commands = commands
        self.breaker = breaker
        self.ttl_s = ttl_s
        self.read_budget_s = read_budget_s
        self._reads: list[tuple[list[str], asyncio.Future[list[Any | None]]]] = []
        self._writes: dict[str, bytes] = {}
        self._flushing_writes = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        """Decoded values in key order; ``None`` for misses and when Redis is unavailable."""
        if not keys:
            return []
        if not self.breaker.available():
            return [None] * len(keys)
        future: asyncio.Future[list[Any | None]] = asyncio.get_running_loop().create_future()
        self._reads.append((list(keys), future))
        if len(self._reads) == 1:
            asyncio.get_running_loop().call_soon(self._spawn, self._flush_reads())
        return await future

    async def _flush_reads(self) -> None:
        batch, self._reads = self._reads, []
        flat = [k for keys, _ in batch for k in keys]
        # Past the budget the waiting requests go on with misses; the read itself runs on to its
        # own timeout, so the breaker still learns that Redis is hung.
        late = asyncio.get_running_loop().call_later(self.read_budget_s, _miss_all, batch)
        try:
            raw = await self.breaker.call(self.commands.mget, flat)
        except Exception as exc:  # noqa: BLE001 - any cache fault is a miss
            log.debug("cache read skipped: %s", exc)
            raw = [None] * len(flat)
        finally:
            late.cancel()
        start = 0
        for keys, future in batch:
            if not future.done():
                future.set_result([_decode(r) for r in raw[start : start + len(keys)]])
            start += len(keys)

    async def set_many(self, items: Mapping[str, Any]) -> None:
        """Buffer values for the next pipelined write (TTL ``ttl_s``); failures are dropped."""
        if not items or not self.breaker.available():
            return
        for key, value in items.items():
            self._writes[key] = orjson.dumps(value)
        if not self._flushing_writes:
            self._flushing_writes = True
            asyncio.get_running_loop().call_later(WRITE_BEHIND_S, self._spawn, self._flush_writes())

    async def _flush_writes(self) -> None:
        try:
            while self._writes:
                batch, self._writes = self._writes, {}

                try:
                    await self.breaker.call(
                        self.commands.eval, _SET_ALL, list(batch), [self.ttl_s, *batch.values()]
                    )
                except Exception as exc:  # noqa: BLE001 - a lost write only costs a future miss
                    log.debug("cache write skipped: %s", exc)
                    self._writes.clear()
        finally:
            self._flushing_writes = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _miss_all(batch: list[tuple[list[str], asyncio.Future[list[Any | None]]]]) -> None:
    for keys, future in batch:
        if not future.done():
            future.set_result([None] * len(keys))


def _decode(item: Any) -> Any | None:
    if item is None:
        return None
    try:
        return orjson.loads(item)
    except orjson.JSONDecodeError:
        return None
