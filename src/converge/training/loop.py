"""Coroutines run to the end from the synchronous code of Mage blocks, wherever Mage runs them.

Mage's scheduler and ``mage run`` call blocks with no event loop, but the editor runs them in a
Jupyter kernel whose loop is already running, where ``asyncio.run`` refuses to start. There the
coroutine gets a loop of its own in a worker thread, so every block behaves the same everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, in a thread of its own when this thread's loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="converge-block-loop") as pool:
        return pool.submit(asyncio.run, coro).result()
