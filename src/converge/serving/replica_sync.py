"""Keep one replica on the registry's production versions.

:class:`ReplicaSync` loads the production version at start (retrying until the registry and the
store answer), follows the reload channel on Redis, and polls the registry every
``registry_poll_s`` for the messages it missed. Every path goes through one serialised ``sync``
that asks the registry what is production, so a late message can never move a replica back to an
older version.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Any

import orjson

from converge.errors import ModelNotFound, is_transient
from converge.resilience import CircuitBreaker
from converge.serving.holder import LoadedModel, ModelHolder
from converge.serving.loader import ModelLoader
from converge.serving.observability import RELOADS

log = logging.getLogger(__name__)

# Postgres SQLSTATEs of a database the migrations have not reached: undefined table / schema.
_SCHEMA_MISSING_SQLSTATES = frozenset({"42P01", "3F000"})
SCHEMA_MISSING = (
    "schema missing: the database has no converge tables; run the migrations "
    "(`converge migrate`, the chart's migration Job or Terraform's release run them)"
)


def not_ready_reason(exc: BaseException) -> str:
    """Why a replica cannot load its model, in words an operator can act on."""
    if getattr(exc, "sqlstate", None) in _SCHEMA_MISSING_SQLSTATES:
        return SCHEMA_MISSING
    return f"registry unavailable: {type(exc).__name__}: {exc}"
# Background work after the first model goes live waits this long (see _after_first_model).
WARM_AFTER_S = 1.0
SUBSCRIBE_WAIT_S = 5.0


class ReplicaSync:
    """Keeps a replica's :class:`ModelHolder` on the registry's production versions."""

    def __init__(
        self,
        holder: ModelHolder,
        loader: ModelLoader,
        registry: Any,
        db_breaker: CircuitBreaker,
        *,
        names: list[str],
        poll_s: float,
        redis_factory: Callable[[], Any] | None = None,
        channel: str | None = None,
        max_models: int = 16,
    ) -> None:
        self.holder = holder
        self.loader = loader
        self.registry = registry
        self.db_breaker = db_breaker
        self.names = list(dict.fromkeys(names))
        self.poll_s = poll_s
        self.redis_factory = redis_factory
        self.channel = channel
        self.max_models = max_models
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._failed: dict[tuple[str, int, str], str] = {}
        self.problem: str | None = None  # why the last registry sync failed, for readiness

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll_loop(), name="registry-poll"))
        if self.redis_factory is not None and self.channel:
            self._tasks.append(loop.create_task(self._subscribe_loop(), name="reload-channel"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - shutting down
                pass
        self._tasks.clear()

    async def sync(self, only: str | None = None) -> None:
        """Load whatever the registry says is production, where it differs from what we serve."""
        async with self._lock:
            for name in [only] if only else list(self.names):
                await self._sync_one(name)

    async def _sync_one(self, name: str) -> None:
        mv = await self.db_breaker.call(self.registry.production, name)
        if mv is None:
            return
        current = self.holder.get(name)
        if current is not None and current.version == mv.version and current.sha256 == mv.sha256:
            return
        key = (name, int(mv.version), mv.sha256)
        if key in self._failed:
            return  # a broken artifact is not fetched again on every poll
        try:
            loaded = await self.loader.load(mv)
        except Exception as exc:
            if is_transient(exc):
                raise
            self._failed[key] = str(exc)
            RELOADS.labels(outcome="load_failed").inc()
            log.error("cannot load %s v%s: %s", name, mv.version, exc)
            return
        first = not self.holder.ready
        if first:
            gc.freeze()  # see _after_first_model
            gc.enable()  # paused while the function started (serve_function.pause_collector)
        previous = self.holder.swap(loaded)
        if first:
            self._tasks.append(asyncio.get_running_loop().create_task(self._after_first_model()))
        RELOADS.labels(outcome="swapped").inc()
        log.info(
            "serving %s v%s",
            name,
            loaded.version,
            extra={
                "fields": {
                    "model": name,
                    "version": loaded.version,
                    "previous": previous.version if previous else None,
                }
            },
        )

    async def offer(self, loaded: LoadedModel) -> None:
        """Install a model this process has just verified and promoted, in sync order."""
        async with self._lock:
            if loaded.name not in self.names:
                self.names.append(loaded.name)
            self.holder.swap(loaded)

    async def ensure(self, name: str) -> LoadedModel:
        """The loaded model ``name``, loading its production version on first use."""
        loaded = self.holder.get(name)
        if loaded is not None:
            return loaded
        if name not in self.names:
            if len(self.names) >= self.max_models:
                raise ModelNotFound(f"this replica serves at most {self.max_models} models")
            mv = await self.db_breaker.call(self.registry.production, name)
            if mv is None:
                raise ModelNotFound(f"model {name!r} has no production version")
            self.names.append(name)
        async with self._lock:  # a load under way (the start's) is waited for, not repeated
            if self.holder.get(name) is None:
                await self._sync_one(name)
        loaded = self.holder.get(name)
        if loaded is None:
            raise ModelNotFound(f"model {name!r} has no loadable production version")
        return loaded

    async def _poll_loop(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.sync()
                delay = self.poll_s
                self.problem = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep polling; readiness tells the rest
                self.problem = not_ready_reason(exc)
                log.warning("registry sync failed: %s", self.problem)
                delay = min(max(delay * 2, 0.5), self.poll_s)
            await asyncio.sleep(delay)

    async def _subscribe_loop(self) -> None:
        # The first model and its first requests come first: subscribing (redis-py's import and a
        # connection) waits for them, SUBSCRIBE_WAIT_S at most; the sync after subscribing picks
        # up whatever was published meanwhile.
        await self.holder.wait_ready(SUBSCRIBE_WAIT_S)
        await asyncio.sleep(WARM_AFTER_S)
        backoff = 0.2
        while True:
            client = None
            try:
                client = self.redis_factory()
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                backoff = 0.2
                # A message may have been missed while we were not subscribed.
                await self._safe_sync()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        name = _message_name(message.get("data"))
                        if name and name not in self.names:
                            continue
                        await self._safe_sync(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down: polling covers us, retry
                log.debug("reload channel unavailable: %s", exc)
            finally:
                if client is not None:
                    try:
                        await client.aclose()
                    except Exception:  # noqa: BLE001, S110 - the link is gone anyway
                        pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _safe_sync(self, name: str | None = None) -> None:
        try:
            await self.sync(name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the poll loop will try again
            log.warning("sync after reload message failed: %s", exc)

    async def _after_first_model(self) -> None:
        """Once the first model serves, and the first requests have had the process to themselves
        for ``WARM_AFTER_S``: import NumPy in a thread (single rows do not need it, merged batches
        do; imported on the loop under the first burst it would stall it ~0.1 s) and start the
        parser process for later reloads. Neither delays readiness any more.

        Before the swap the start-up heap was frozen (moved to the collector's permanent
        generation, without a collection: one costs ~50 ms and finds next to nothing here);
        NumPy's modules are frozen after it the same way. Otherwise every full collection walks
        them all, tens of milliseconds on the event loop, and the allocations of a reload are what
        tip the collector into one. Frozen objects are still freed by refcounting."""
        await asyncio.sleep(WARM_AFTER_S)
        await asyncio.to_thread(_import_numpy)
        await asyncio.to_thread(self.loader.warm)


def _import_numpy() -> None:
    import numpy  # noqa: F401

    gc.freeze()


def _message_name(data: Any) -> str | None:
    try:
        payload = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return payload.get("name") if isinstance(payload, dict) else None
