"""NumPy, imported the first time it is used.

One row scores through the compiled kernels and plain Python, with no NumPy at all, and importing
NumPy is most of a cold start (0.1-0.15 s, against about 0.1 s for everything else a cold start
does). The modules on that path therefore bind ``np = numpy_when_used(__name__)``: a stand-in whose
first attribute access imports NumPy and rebinds ``np`` in each of those modules, so batch code
written against ``np`` runs unchanged and, from then on, calls NumPy directly.

Rules for code on the one-row path: touch no ``np`` attribute, not even in a default argument or
an ``isinstance`` check (use :func:`numpy_if_loaded` there: a value cannot be a NumPy type unless
NumPy was imported).
"""

from __future__ import annotations

import sys
from types import ModuleType


class _DeferredNumpy:
    """Stands in for the ``numpy`` module until one of its attributes is needed."""

    def __init__(self) -> None:
        self._modules: list[str] = []

    def bind(self, module_name: str) -> _DeferredNumpy:
        self._modules.append(module_name)
        return self

    def __getattr__(self, name: str):
        import numpy

        for module_name in self._modules:
            module = sys.modules.get(module_name)
            if module is not None and module.__dict__.get("np") is self:
                module.np = numpy
        return getattr(numpy, name)


_DEFERRED = _DeferredNumpy()


def numpy_when_used(module_name: str) -> ModuleType | _DeferredNumpy:
    """NumPy itself if it is already imported, otherwise the shared stand-in."""
    loaded = sys.modules.get("numpy")
    return loaded if loaded is not None else _DEFERRED.bind(module_name)


def numpy_if_loaded() -> ModuleType | None:
    """NumPy if something imported it already; for type checks that must not import it."""
    return sys.modules.get("numpy")
