"""Wiring: one object per process that owns the clients, breakers and services.

Everything is built lazily and nothing connects at construction, so a function starts (and
answers its probes) while Postgres, Redis or S3 are still down; the breakers and the background
sync take it from there. ``start`` is idempotent and safe to call from the first request.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property
from importlib import import_module
from typing import Any

from converge.cache import PredictionCache
from converge.cache.resp import RespError
from converge.errors import Unavailable
from converge.resilience import CircuitBreaker
from converge.serving.holder import ModelHolder
from converge.serving.ingest import IngestService
from converge.serving.loader import ModelLoader
from converge.serving.replica_sync import ReplicaSync
from converge.serving.online import OnlineFeatures
from converge.serving.predict import PredictService
from converge.serving.reload import ReloadService
from converge.serving.rollout import RolloutRouter
from converge.serving.scoring import Scorer
from converge.serving.versions import PinnedVersions
from converge.settings import Settings, get_settings

log = logging.getLogger(__name__)

_OUTAGES = (Unavailable, ConnectionError, OSError, TimeoutError)
# Online copies outlive cached predictions: they are refreshed by every ingest.
ONLINE_TTL_FACTOR = 12
# A failure faster than this was a refusal, not a hang.
SLOW_FAILURE_S = 0.1


class Runtime:
    """Lazily built dependencies of the functions; one per process (or per test server)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        scorer: Scorer | None = None,
        use_cache: bool = True,
    ) -> None:
        self.settings = settings or get_settings()
        self._scorer = scorer
        self.use_cache = use_cache
        self.holder = ModelHolder()
        # Only slow failures open a breaker (see converge.resilience): a refused connection is
        # cheap to retry, a hung one costs a timeout. The database's reset timeout is short: each
        # half-open trial costs one request a timeout (under a second), and while the breaker is
        # open after the database is back, requests still fail.
        self.redis_breaker = CircuitBreaker(
            "redis", failure_threshold=2, reset_timeout_s=2.0,
            # and RedisError, once redis-py is loaded
            failures=(RespError, *_OUTAGES), slow_s=SLOW_FAILURE_S,
        )
        self.db_breaker = CircuitBreaker(
            "postgres", failure_threshold=3, reset_timeout_s=0.5, failures=_OUTAGES,
            slow_s=SLOW_FAILURE_S,
        )
        self.s3_breaker = CircuitBreaker(
            "s3", failure_threshold=3, reset_timeout_s=2.0, failures=_OUTAGES,
            slow_s=SLOW_FAILURE_S,
        )  # fmt: skip
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._started: set[str] = set()
        self._sync: ReplicaSync | None = None

    # -- clients ------------------------------------------------------------------------------
    def new_redis(self) -> Any:
        """Short timeouts and no retries: the breaker decides, a request never waits on Redis.

        redis-py is imported here, on first use: predict's per-request cache commands go through
        :mod:`converge.cache.resp`, so its start does not pay for redis-py (~35 ms of imports)."""
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        if RedisError not in self.redis_breaker.failures:
            self.redis_breaker.failures = (*self.redis_breaker.failures, RedisError)
        return aioredis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=0.25,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    @cached_property
    def redis(self) -> Any:
        return self.new_redis()

    @cached_property
    def cache_commands(self) -> Any:
        """The prediction cache's per-request commands on a lean pipelined connection
        (:mod:`converge.cache.resp`), or through redis-py where that cannot connect."""
        from converge.cache import RedisPyCommands
        from converge.cache.resp import RespClient

        return RespClient.from_url(self.settings.redis_url, timeout_s=0.5) or RedisPyCommands(
            self.redis
        )

    async def pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    from converge.db import create_pool

                    # min_size=0: creating the pool does not need a live database.
                    self._pool = await create_pool(self.settings, min_size=0)
        return self._pool

    @cached_property
    def artifacts(self) -> Any:
        from converge.artifacts import ArtifactStore

        return ArtifactStore(self.settings)

    @cached_property
    def event_oidc(self) -> Any:
        """The OIDC verifier of incoming events, or None where no audience is configured."""
        s = self.settings
        if not s.event_oidc_audience:
            return None
        from converge.serving.web.event_oidc import OidcVerifier

        return OidcVerifier(
            s.event_oidc_audience,
            s.event_oidc_jwks_url,
            issuer=s.event_oidc_issuer,
            subjects=s.event_oidc_subjects,
            token_path=s.event_oidc_token_path,
        )

    @cached_property
    def scorer(self) -> Scorer:
        return self._scorer or Scorer(self.settings.scoring_mode)

    @cached_property
    def loader(self) -> ModelLoader:
        return ModelLoader(self.artifacts, self.s3_breaker, backend=self.settings.scorer_backend)

    @cached_property
    def online(self) -> OnlineFeatures:
        return OnlineFeatures(
            _LazyRedis(self), self.redis_breaker, self.settings.cache_ttl_s * ONLINE_TTL_FACTOR
        )

    async def registry(self) -> Any:
        from converge.registry import Registry

        return Registry(await self.pool())

    async def rollouts(self) -> Any:
        from converge.rollouts import Rollouts

        return Rollouts(await self.pool())

    async def _promote_candidate(self, rollout: Any) -> None:
        """A canary that met its thresholds goes through the reload path: here, where this
        process is the reload function too (``converge serve``); otherwise as a signed
        ``rollout.decided`` event, on which the reload function promotes what the rollouts table
        says was decided (predict holds the rollout key, never the publish key)."""
        if "reload" in self._started:
            await self.carry_out_promotion(rollout)
            return
        if not self.settings.rollout_key.get_secret_value():
            log.warning("canary %s v%s met its thresholds; promote it with the admin API",
                        rollout.name, rollout.candidate)  # fmt: skip
            return
        from converge.published_event import emit, rollout_decided_event

        event = rollout_decided_event(rollout.name, rollout.id, self.settings)
        await asyncio.to_thread(emit, event, self.settings.broker_url, 30.0, 2)

    async def carry_out_promotion(self, rollout: Any) -> Any:
        """Promote a rollout's candidate through the reload path and mark the rollout promoted."""
        from converge.contracts import ModelPublished

        service = await self.reload_service()
        result = await service.reload(ModelPublished(name=rollout.name, version=rollout.candidate))
        await (await self.rollouts()).mark(rollout.id, "promoted", "promoted by the reload path")
        return result

    async def feature_store(self) -> Any:
        from converge.features import FeatureStore

        return FeatureStore(
            await self.pool(),
            write_timeout_s=self.settings.ingest_timeout_s,
            write_timeout_per_row_s=self.settings.ingest_timeout_per_row_s,
            read_timeout_s=self.settings.feature_read_timeout_s,
        )

    # -- services -----------------------------------------------------------------------------
    @property
    def replica_sync_if_started(self) -> ReplicaSync | None:
        return self._sync

    async def replica_sync(self) -> ReplicaSync:
        if self._sync is None:
            self._sync = ReplicaSync(
                self.holder,
                self.loader,
                await self.registry(),
                self.db_breaker,
                names=[self.settings.default_model],
                poll_s=self.settings.registry_poll_s,
                redis_factory=self.new_redis,
                channel=self.settings.reload_channel,
            )
        return self._sync

    @cached_property
    def _services(self) -> dict[str, Any]:
        return {}

    async def predict_service(self) -> PredictService:
        if "predict" not in self._services:
            self._services["predict"] = PredictService(
                sync=await self.replica_sync(),
                scorer=self.scorer,
                cache=(
                    PredictionCache(
                        self.cache_commands, self.redis_breaker, self.settings.cache_ttl_s,
                        read_budget_s=self.settings.cache_read_budget_s,
                    )
                    if self.use_cache
                    else None
                ),
                online=self.online,
                feature_store=await self.feature_store(),
                db_breaker=self.db_breaker,
                strict_inputs=self.settings.strict_inputs,
                pinned=PinnedVersions(
                    await self.registry(), self.loader, self.db_breaker,
                    max_kept=self.settings.max_pinned_versions,
                ),
                rollouts=RolloutRouter(
                    self.rollouts, self.db_breaker, poll_s=self.settings.registry_poll_s,
                    on_promote=self._promote_candidate,
                ),
                default_model=self.settings.default_model,
                max_rows=self.settings.max_batch_rows,
            )
        return self._services["predict"]

    async def reload_service(self) -> ReloadService:
        if "reload" not in self._services:
            self._services["reload"] = ReloadService(
                registry=await self.registry(),
                loader=self.loader,
                db_breaker=self.db_breaker,
                redis=self.redis,
                redis_breaker=self.redis_breaker,
                channel=self.settings.reload_channel,
                # In one process with predict (the local gateway) swap right away.
                on_promoted=self._sync.offer if self._sync is not None else None,
            )
        return self._services["reload"]

    async def ingest_service(self) -> IngestService:
        if "ingest" not in self._services:
            self._services["ingest"] = IngestService(
                feature_store=await self.feature_store(),
                db_breaker=self.db_breaker,
                online=self.online,
            )
        return self._services["ingest"]

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, role: str) -> None:
        """Idempotent; for ``predict`` this starts the background load, sync and subscriber."""
        if role in self._started:
            return
        self._started.add(role)
        if role == "predict":
            # The scorer's modules load in a thread while the registry look-up waits on the network.
            asyncio.get_running_loop().run_in_executor(None, import_module, "converge.mojo")
            sync = await self.replica_sync()
            sync.start()
        elif role == "reload":
            # Before the first reload, not during it: the parser process (a new interpreter
            # importing the scorer and NumPy) starts now.
            self.loader.warm()

    @property
    def ready(self) -> bool:
        return self.holder.ready

    async def close(self) -> None:
        if self._sync is not None:
            await self._sync.stop()
        if "redis" in self.__dict__:
            await self.redis.aclose()
        if "cache_commands" in self.__dict__ and hasattr(self.cache_commands, "aclose"):
            await self.cache_commands.aclose()
        if self._pool is not None:
            await self._pool.close()
        if "loader" in self.__dict__:
            self.loader.close()
        self.scorer.close()


class _LazyRedis:
    """The runtime's redis-py client, built on first use: a predict request with its features in
    the body never touches the online copy, so predict's start does not import redis-py for it."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime.redis, name)
