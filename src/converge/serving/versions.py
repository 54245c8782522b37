"""Registered versions other than production, loaded on demand for requests that pin one.

A request with ``"version": N`` (or a V2 ``/versions/N`` route) is scored by exactly that version.
Production lives in the :class:`~converge.serving.holder.ModelHolder`; every other version asked
for is fetched and verified like a reload (sha256 from the registry) and kept in a small LRU:
``max_kept`` models (4 by default: a release's candidate, the previous production, and two
more), so a client sweeping versions cannot fill the memory of a replica.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from converge.serving.holder import LoadedModel


class PinnedVersions:
    def __init__(self, registry: Any, loader: Any, db_breaker: Any, *, max_kept: int = 4) -> None:
        self.registry = registry
        self.loader = loader
        self.db_breaker = db_breaker
        self.max_kept = max_kept
        self._kept: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future[LoadedModel]] = {}

    async def get(self, name: str, version: int) -> LoadedModel:
        """The loaded ``version`` of ``name``; concurrent first requests share one load."""
        key = (name, version)
        loaded = self._kept.get(key)
        if loaded is not None:
            self._kept.move_to_end(key)
            return loaded
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[key] = pending
            try:
                loaded = await self._load(name, version)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: no "never retrieved" warning when nobody waits
                raise
            finally:
                del self._loading[key]
            pending.set_result(loaded)
            self._kept[key] = loaded
            while len(self._kept) > self.max_kept:
                self._kept.popitem(last=False)
            return loaded
        return await asyncio.shield(pending)

    async def _load(self, name: str, version: int) -> LoadedModel:
        mv = await self.db_breaker.call(self.registry.get, name, version)  # ModelNotFound if none
        return await self.loader.load(mv)

    def kept(self) -> list[tuple[str, int]]:
        return list(self._kept)
