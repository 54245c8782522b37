"""Helpers the reliability test modules import (conftest.py is not importable by name)."""

from __future__ import annotations


import httpx

from converge.checkout import REPO
from converge.serving.testing import FunctionProcess, wait_until

SOURCE = REPO / "functions" / "main.py"
TOKEN = "reliability-admin-token"
PUBLISH_KEY = "reliability-publish-key"
INGEST_TOKEN = "reliability-ingest-token"
INGEST_AUTH = {"authorization": f"Bearer {INGEST_TOKEN}"}


async def wait_ready(url: str, timeout: float = 60.0) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as client:

        async def ready() -> bool:
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(ready, timeout=timeout)


def log_problems(fn: FunctionProcess) -> list[str]:
    """Lines of a function's log that show an unhandled exception."""
    text = fn.log_path.read_text(errors="replace") if fn.log_path.exists() else ""
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line or "unhandled error" in line or "Exception in ASGI" in line
    ]
