"""Fetch, verify, load and validate a registered model version; keep a replica in step.

:class:`ModelLoader` turns a registry entry into a :class:`LoadedModel`: the artifact is fetched
with the registry's sha256 as the expected digest, parsed off the event loop, and (for a reload)
re-scored on the validation sample the trainer stored, comparing labels exactly and probabilities
within ``1e-9``. After the first load all three happen in a separate, niced parser process, so a
reload costs the serving process only the unpickling of the result.

:class:`ReplicaSync` keeps one predict replica on the production version: it loads it at start
(retrying until the registry and the store answer), follows the reload channel on Redis, and polls
the registry every ``registry_poll_s`` for the messages it missed. Every path goes through one
serialised ``sync`` that asks the registry what is production, so a late message can never move a
replica back to an older version.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import math
import os
import pickle
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from converge.errors import ModelNotFound, is_transient
from converge.resilience import CircuitBreaker
from converge.serving.holder import LoadedModel, ModelHolder
from converge.serving.observability import RELOADS
from converge.serving.scoring import predict_rows

log = logging.getLogger(__name__)

PROB_TOLERANCE = 1e-9
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


class ValidationMismatch(Exception):
    """The artifact does not reproduce the trainer's predictions on the validation sample."""


class SampleError(Exception):
    """The model loads but cannot score its validation sample; the message is the cause's."""


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await ``fn`` if it is a coroutine function, otherwise run it in a thread (blocking I/O)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def _load_mojo(data: bytes, backend: str) -> Any:
    from converge.mojo import load_mojo

    return load_mojo(data, backend=backend)


def _check(model: Any, sample: Any) -> int:
    """Re-score the validation sample; a failure other than a mismatch becomes a
    :class:`SampleError` with the same message (it always pickles, whatever the cause was)."""
    try:
        if isinstance(sample, str | bytes):
            sample = orjson.loads(sample)
        return compare_sample(LoadedModel(name="", version=0, sha256="", model=model), sample)
    except ValidationMismatch:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as "cannot score the sample"
        raise SampleError(str(exc)) from exc


def _parse(data: bytes, backend: str, check: bool, sample: Any) -> tuple[Any, int | None]:
    """Parse the MOJO and, with ``check``, re-score the validation sample on it."""
    model = _load_mojo(data, backend)
    return model, (_check(model, sample) if check else None)


def _parse_pickled(
    data: bytes, backend: str, check: bool, sample: Any
) -> tuple[bytes, int | None]:
    """In a parser process: parse (and check) there and hand back the model as a pickle. The check
    scores an unpickled copy: the very object the serving process will hold."""
    blob = pickle.dumps(_load_mojo(data, backend), protocol=pickle.HIGHEST_PROTOCOL)
    return blob, (_check(pickle.loads(blob), sample) if check else None)  # noqa: S301 - our own


_store: Any = None  # the parser process's own ArtifactStore


def _fetch_parse_pickled(
    uri: str, sha256: str, backend: str, check: bool, sample: Any
) -> tuple[bytes, int | None] | Exception:
    """In a parser process: download and verify the artifact there too, so neither the download
    nor the sha256 holds the serving process's GIL during a reload. Store
    errors raise, for the caller's S3 breaker to judge; a failure after the download is returned,
    so the breaker sees a good fetch, as it would with the fetch in-process."""
    data = _store.get(uri, expected_sha256=sha256)
    try:
        return _parse_pickled(data, backend, check, sample)
    except Exception as exc:  # noqa: BLE001 - raised by the caller, past the breaker
        return exc


def _exit_with_parent(parent_pid: int) -> None:
    """In the parser process: exit as soon as ``parent_pid`` (the serving process) is gone,
    whatever stopped it (SIGTERM, SIGKILL, OOM kill).

    A watcher thread waits on a pidfd of the parent (readable when it exits), or on Linux without
    pidfds polls ``getppid()``. ``PR_SET_PDEATHSIG`` does not fit: it fires when the *thread*
    that started the process exits, and the parser is started from a short-lived thread."""

    def watch() -> None:
        try:
            fd = os.pidfd_open(parent_pid)
        except (AttributeError, OSError):  # no pidfds, or the parent is already gone
            while os.getppid() == parent_pid:
                time.sleep(0.5)
        else:
            select.select([fd], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _background(parent_pid: int, store_settings: Any = None) -> None:
    """In the parser process: exit with the parent; import the scorer and NumPy and build the
    artifact store once, before the first reload."""
    global _store
    _exit_with_parent(parent_pid)
    import numpy  # noqa: F401 - one row scores without it, a validation sample does not

    from converge.mojo import load_mojo  # noqa: F401

    if store_settings is not None:
        from converge.artifacts import ArtifactStore

        _store = ArtifactStore(store_settings)


def _ready() -> bool:
    return True


def _start_niced(pool: Any) -> None:
    """Start ``pool``'s process from a short-lived thread at niceness 10. On Linux niceness is per
    thread and a new process inherits its creator's, so the parser process yields the CPU to the
    serving process from its first instruction, interpreter start-up and imports included."""
    def start() -> None:
        with contextlib.suppress(OSError):
            os.nice(10)
        pool.submit(_ready)

    thread = threading.Thread(target=start, name="parser-start", daemon=True)
    thread.start()
    thread.join()


class _InProcess(Exception):
    """The parser process cannot do this one (it died, or something does not pickle)."""


class _Parser:
    """Fetches and parses MOJOs in one separate process, so a reload does not hold the serving
    process's GIL.

    Parsing is tens of milliseconds of pure Python and the download with its sha256 a few more; in a
    thread of the serving process they starve the event loop (p99 during reloads rose from ~4 ms
    to 100+ ms). The model comes back pickled and unpickles in about a millisecond. Models that
    cannot be pickled (the JVM backend) and the very first load (nothing to protect yet, and no
    process to start) are handled in a thread as before. ``store_settings``: the process builds
    its own ``ArtifactStore`` from them and fetches too; without them it is handed the bytes.
    """

    def __init__(self, store_settings: Any = None) -> None:
        self._pool: Any = None  # a ProcessPoolExecutor; multiprocessing is imported with it
        self.store_settings = store_settings

    def warm(self) -> None:
        """Start the parser process now (after the first load, before any reload), so the first
        reload does not pay for a fresh interpreter importing NumPy next to live traffic."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_background,
                initargs=(os.getpid(), self.store_settings),
            )
            _start_niced(self._pool)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the parser process; :class:`_InProcess` where that cannot work."""
        self.warm()
        from concurrent.futures.process import BrokenProcessPool

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except (pickle.PicklingError, TypeError, AttributeError, BrokenProcessPool) as exc:
            log.info("parsing in-process (%s)", type(exc).__name__)
            if isinstance(exc, BrokenProcessPool):  # the process died: a new one next time
                self.close()
            raise _InProcess from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None  # a later warm() starts a new process


def _same_label(a: Any, b: Any) -> bool:
    """Class labels compare as text; regression values within the tolerance."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or abs(fa - fb) <= PROB_TOLERANCE
    return str(a) == str(b)


def compare_sample(loaded: LoadedModel, sample: dict[str, Any] | None) -> int:
    """Re-score the validation sample; raises :class:`ValidationMismatch` naming the first diff."""
    if not sample or not sample.get("rows"):
        raise ValidationMismatch("the registry holds no validation sample for this version")
    rows, expected = sample["rows"], sample.get("predictions") or []
    if len(rows) != len(expected):
        raise ValidationMismatch(
            f"validation sample has {len(rows)} rows but {len(expected)} predictions"
        )
    got = predict_rows(loaded, rows)
    for i, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        outputs = mine.get("outputs")
        if outputs and any(name in theirs for name in outputs):  # a cluster, anomaly score...
            for name, value in outputs.items():
                if not _same_label(value, theirs.get(name)):
                    raise ValidationMismatch(
                        f"row {i}: {name} {value!r} != trainer's {theirs.get(name)!r}")
            continue
        if not _same_label(mine["label"], theirs.get("predict")):
            raise ValidationMismatch(
                f"row {i}: label {mine['label']!r} != trainer's {theirs.get('predict')!r}"
            )
        for cls, column in loaded.classes or []:
            p = (mine["probabilities"] or {}).get(cls)
            want = theirs.get(column, theirs.get(cls))
            if p is None or want is None:
                raise ValidationMismatch(f"row {i}: no probability for class {cls!r}")
            if not abs(p - float(want)) <= PROB_TOLERANCE:
                raise ValidationMismatch(
                    f"row {i}: P({cls}) = {p!r} differs from trainer's {want!r} by more"
                    f" than {PROB_TOLERANCE}"
                )
    return len(rows)


class ModelLoader:
    """Registry entry -> verified, parsed model."""

    def __init__(
        self,
        artifacts: Any,
        s3_breaker: CircuitBreaker,
        backend: str = "auto",
    ) -> None:
        from converge.artifacts import ArtifactStore

        self.artifacts = artifacts
        self.s3_breaker = s3_breaker
        self.backend = backend
        # The parser process fetches too where it can build the same store from its settings.
        remote = artifacts.settings if type(artifacts) is ArtifactStore else None
        self._parser = _Parser(remote)
        self._loaded_once = False

    async def fetch(self, mv: Any) -> bytes:
        return await self.s3_breaker.call(
            call, self.artifacts.get, mv.artifact_uri, expected_sha256=mv.sha256
        )

    async def load(self, mv: Any, *, background: bool = False) -> LoadedModel:
        """Raises ArtifactIntegrityError / ArtifactNotFound / StorageUnavailable / MOJO errors.

        ``background``: parse in the parser process even the first time (the reload function:
        the model it checks serves nothing yet, its neighbours' requests come first)."""
        loaded, _ = await self._load(mv, background=background, check=False)
        return loaded

    async def load_checked(self, mv: Any) -> tuple[LoadedModel, int]:
        """The reload function's checks: load as ``load(background=True)`` does and re-score
        ``mv.validation_sample``, all in the parser process. Raises what ``load`` raises,
        :class:`ValidationMismatch`, or :class:`SampleError`; returns the model and the rows."""
        return await self._load(mv, background=True, check=True)

    async def _load(self, mv: Any, *, background: bool, check: bool) -> tuple[LoadedModel, Any]:
        sample = mv.validation_sample if check else None
        first = not self._loaded_once and not background
        parsed = None
        if not first and self.backend != "genmodel":
            with contextlib.suppress(_InProcess):
                parsed = await self._in_parser(mv, check, sample)
        if parsed is None:  # in a thread of this process
            data = await self.fetch(mv)
            model, rows = await asyncio.to_thread(_parse, data, self.backend, check, sample)
        else:
            blob, rows = parsed
            model = pickle.loads(blob)  # noqa: S301 - our own process's output
        self._loaded_once = True
        loaded = LoadedModel(name=mv.name, version=int(mv.version), sha256=mv.sha256, model=model)
        return loaded, rows

    @property
    def fetches_in_parser(self) -> bool:
        """Whether the parser process fetches artifacts itself (after the first load)."""
        return self.backend != "genmodel" and self._parser.store_settings is not None

    async def _in_parser(self, mv: Any, check: bool, sample: Any) -> tuple[bytes, int | None]:
        if not self.fetches_in_parser:
            data = await self.fetch(mv)
            return await self._parser.run(_parse_pickled, data, self.backend, check, sample)
        outcome = await self.s3_breaker.call(
            self._parser.run, _fetch_parse_pickled,
            mv.artifact_uri, mv.sha256, self.backend, check, sample,
        )  # fmt: skip
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def warm(self) -> None:
        """Start the parser process ahead of the first reload (the reload function does this at
        start-up: its first check should not pay for a new interpreter next to live traffic)."""
        if self.backend != "genmodel":
            self._parser.warm()

    def close(self) -> None:
        """Stop the parser process, if a reload started one."""
        self._parser.close()


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
