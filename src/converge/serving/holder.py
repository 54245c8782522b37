"""The model a replica serves: one immutable reference, replaced in a single assignment.

A request reads ``holder.current`` once and scores with that object to the end, so a swap in the
middle of a request cannot mix two versions; the old model is freed when its last request ends.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from converge.serving.observability import MODEL_VERSION


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    sha256: str
    model: Any
    loaded_at: float = field(default_factory=time.time)

    @cached_property  # read on every request; the model never changes under this object
    def classes(self) -> list[tuple[str, str]] | None:
        """(class label, output column) pairs: genmodel names integer classes ``p0``, ``p1``..."""
        classes = getattr(self.model, "classes", None)
        if not classes:
            return None
        names = list(getattr(self.model, "output_names", []) or [])[1:]
        if len(names) != len(classes):
            names = [str(c) for c in classes]
        return [(str(c), str(n)) for c, n in zip(classes, names, strict=True)]

    @cached_property
    def input_schema(self) -> Any:
        """Feature names, types and levels from the MOJO (see :mod:`.input_check`)."""
        from converge.serving.input_check import InputSchema

        return InputSchema.of(self.model)


class ModelHolder:
    """Holds the live :class:`LoadedModel` of each model name this replica serves."""

    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}
        self._ready = asyncio.Event()

    def get(self, name: str) -> LoadedModel | None:
        return self._models.get(name)

    def swap(self, loaded: LoadedModel) -> LoadedModel | None:
        """Install ``loaded``; returns the model it replaced."""
        previous = self._models.get(loaded.name)
        self._models[loaded.name] = loaded  # one dict store: atomic for every reader
        MODEL_VERSION.labels(model=loaded.name).set(loaded.version)
        self._ready.set()
        return previous

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def snapshot(self) -> dict[str, LoadedModel]:
        return dict(self._models)
