"""The reload service: verify and validate a registered version, promote it, tell the replicas.

Order matters: nothing changes in the registry until the artifact has passed the sha256 check and
reproduced the trainer's predictions; the Redis message goes out only after the promotion, so a
replica that reacts to it (by asking the registry) finds the new version. A rejected artifact
leaves the registry and every replica as they were.

Promotion never goes backwards (:mod:`converge.registry`). For a ``model.published`` event a stale
version is answered 200 with ``outcome: "stale"`` (and counted): the event was delivered, retrying
cannot make it current, and a 4xx would only park it in the dead-letter Broker. The redelivery of
the current production version's event is acknowledged without loading anything. Through the
admin API a stale version is a 409 that points at rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from converge.contracts import ModelPublished, ReloadResult
from converge.errors import (
    ArtifactIntegrityError,
    ArtifactNotFound,
    ArtifactRejected,
    ConvergeError,
    ModelNotFound,
    NotFound,
    StaleVersion,
    Unavailable,
    is_transient,
    outage_of,
)
from converge.resilience import CircuitBreaker
from converge.serving.holder import LoadedModel
from converge.serving.loader import ModelLoader
from converge.serving.validation_sample import SampleError, ValidationMismatch
from converge.serving.observability import RELOADS

log = logging.getLogger(__name__)



class ReloadService:
    def __init__(
        self,
        *,
        registry: Any,
        loader: ModelLoader,
        db_breaker: CircuitBreaker,
        redis: Any,
        redis_breaker: CircuitBreaker,
        channel: str,
        on_promoted: Callable[[LoadedModel], Awaitable[None]] | None = None,
    ) -> None:
        self.registry = registry
        self.loader = loader
        self.db_breaker = db_breaker
        self.redis = redis
        self.redis_breaker = redis_breaker
        self.channel = channel
        self.on_promoted = on_promoted

    async def reload(self, ref: ModelPublished, *, event: bool = False) -> ReloadResult:
        """Verify, validate and promote ``ref``; ``event`` for a ``model.published`` delivery."""
        try:
            return await self._reload(ref, event)
        except StaleVersion as exc:
            if not event:
                RELOADS.labels(outcome="rejected").inc()
                raise
            RELOADS.labels(outcome="stale").inc()
            log.warning(
                "stale model.published for %s v%s acknowledged, not promoted: %s",
                ref.name,
                ref.version,
                exc,
                extra={"fields": {"model": ref.name, "version": ref.version, "outcome": "stale"}},
            )
            return ReloadResult(
                name=ref.name,
                version=ref.version,
                outcome="stale",
                production_version=exc.production,
            )
        except ConvergeError as exc:
            RELOADS.labels(outcome="unavailable" if exc.retryable else "rejected").inc()
            log.warning("reload of %s v%s refused: %s", ref.name, ref.version, exc)
            raise

    async def _reload(self, ref: ModelPublished, event: bool) -> ReloadResult:
        try:
            with outage_of("model registry"):
                mv = await self.db_breaker.call(self.registry.get, ref.name, ref.version)
                if event and mv is not None and mv.stage == "production":
                    return ReloadResult(
                        name=mv.name,
                        version=mv.version,
                        sha256=mv.sha256,
                        stage="production",
                        outcome="current",
                        production_version=mv.version,
                    )
                # Fail fast, before the artifact is fetched; promote checks again under its lock.
                await self.db_breaker.call(
                    self.registry.check_promotion, ref.name, ref.version, event=event
                )
        except NotFound as exc:
            raise NotFound(f"version: {exc}") from None
        if mv is None:
            raise ModelNotFound(f"version: model {ref.name!r} has no version {ref.version}")

        # Fetch, sha256, parse and the validation sample all run in the loader's parser process.
        try:
            loaded, rows = await self.loader.load_checked(mv)
        except ValidationMismatch as exc:
            raise ArtifactRejected(f"artifact rejected: validation failed: {exc}") from None
        except SampleError as exc:  # the model loads but cannot score its sample
            raise ArtifactRejected(
                f"artifact rejected: cannot score validation sample ({exc})"
            ) from None
        except ArtifactIntegrityError as exc:
            raise ArtifactRejected(f"artifact rejected: sha256 mismatch ({exc})") from None
        except ArtifactNotFound as exc:
            raise ArtifactRejected(f"artifact missing: {exc}") from None
        except Exception as exc:
            if is_transient(exc):
                raise Unavailable("artifact store unavailable; retry later") from None
            if isinstance(exc, ConvergeError | ValueError | KeyError | EOFError) or _is_mojo_error(
                exc
            ):
                raise ArtifactRejected(f"artifact rejected: not a loadable MOJO ({exc})") from None
            raise

        with outage_of("model registry"):
            await self.db_breaker.call(
                self.registry.promote, ref.name, ref.version, event=event
            )
        if self.on_promoted is not None:
            await self.on_promoted(loaded)
        await self._announce(ref.name, loaded.version, loaded.sha256)
        RELOADS.labels(outcome="promoted").inc()
        log.info(
            "promoted %s v%s",
            ref.name,
            ref.version,
            extra={"fields": {"model": ref.name, "version": ref.version, "rows": rows}},
        )
        return ReloadResult(
            name=ref.name,
            version=loaded.version,
            sha256=loaded.sha256,
            stage="production",
            validated_rows=rows,
            production_version=loaded.version,
        )

    async def _announce(self, name: str, version: int, sha256: str) -> None:
        message = orjson.dumps({"name": name, "version": version, "sha256": sha256})
        try:
            await self.redis_breaker.call(self.redis.publish, self.channel, message)
        except Exception as exc:  # noqa: BLE001 - replicas catch up by polling the registry
            log.warning("reload message not published (replicas will poll): %s", exc)


def _is_mojo_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("converge.mojo") or "zip" in type(exc).__name__.lower()
