"""The parser process: MOJOs fetched, parsed (and checked) off the serving process's GIL.

Parsing is tens of milliseconds of pure Python and the download with its sha256 a few more; in a
thread of the serving process they starve the event loop (p99 during reloads rose from ~4 ms to
100+ ms). One niced, spawned process does them and hands the model back pickled; it exits with
its parent whatever stopped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from converge.serving.validation_sample import check_sample

log = logging.getLogger(__name__)


def _load_mojo(data: bytes, backend: str) -> Any:
    from converge.mojo import load_mojo

    return load_mojo(data, backend=backend)


def parse(data: bytes, backend: str, check: bool, sample: Any) -> tuple[Any, int | None]:
    """Parse the MOJO and, with ``check``, re-score the validation sample on it."""
    model = _load_mojo(data, backend)
    return model, (check_sample(model, sample) if check else None)


def parse_pickled(
    data: bytes, backend: str, check: bool, sample: Any
) -> tuple[bytes, int | None]:
    """In a parser process: parse (and check) there and hand back the model as a pickle. The check
    scores an unpickled copy: the very object the serving process will hold."""
    blob = pickle.dumps(_load_mojo(data, backend), protocol=pickle.HIGHEST_PROTOCOL)
    return blob, (check_sample(pickle.loads(blob), sample) if check else None)  # noqa: S301 - our own


_store: Any = None  # the parser process's own ArtifactStore


def fetch_parse_pickled(
    uri: str, sha256: str, backend: str, check: bool, sample: Any
) -> tuple[bytes, int | None] | Exception:
    """In a parser process: download and verify the artifact there too, so neither the download
    nor the sha256 holds the serving process's GIL during a reload. Store
    errors raise, for the caller's S3 breaker to judge; a failure after the download is returned,
    so the breaker sees a good fetch, as it would with the fetch in-process."""
    data = _store.get(uri, expected_sha256=sha256)
    try:
        return parse_pickled(data, backend, check, sample)
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


class InProcess(Exception):
    """The parser process cannot do this one (it died, or something does not pickle)."""


class ParserProcess:
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
        """``fn(*args)`` in the parser process; :class:`InProcess` where that cannot work."""
        self.warm()
        from concurrent.futures.process import BrokenProcessPool

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except (pickle.PicklingError, TypeError, AttributeError, BrokenProcessPool) as exc:
            log.info("parsing in-process (%s)", type(exc).__name__)
            if isinstance(exc, BrokenProcessPool):  # the process died: a new one next time
                self.close()
            raise InProcess from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None  # a later warm() starts a new process
