"""Fetch, verify, load and validate a registered model version.

:class:`ModelLoader` turns a registry entry into a :class:`LoadedModel`: the artifact is fetched
with the registry's sha256 as the expected digest, parsed off the event loop, and (for a reload)
re-scored on the validation sample the trainer stored (:mod:`.validation_sample`). After the first
load all three happen in the parser process (:mod:`.parser_process`), so a reload costs the
serving process only the unpickling of the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import pickle
from collections.abc import Callable
from typing import Any

from converge.resilience import CircuitBreaker
from converge.serving.holder import LoadedModel
from converge.serving.parser_process import (
    InProcess,
    ParserProcess,
    fetch_parse_pickled,
    parse,
    parse_pickled,
)
from converge.serving.validation_sample import SampleError, ValidationMismatch

__all__ = ["ModelLoader", "SampleError", "ValidationMismatch", "call"]


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await ``fn`` if it is a coroutine function, otherwise run it in a thread (blocking I/O)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


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
        self._parser = ParserProcess(remote)
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
            with contextlib.suppress(InProcess):
                parsed = await self._in_parser(mv, check, sample)
        if parsed is None:  # in a thread of this process
            data = await self.fetch(mv)
            model, rows = await asyncio.to_thread(parse, data, self.backend, check, sample)
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
            return await self._parser.run(parse_pickled, data, self.backend, check, sample)
        outcome = await self.s3_breaker.call(
            self._parser.run, fetch_parse_pickled,
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
