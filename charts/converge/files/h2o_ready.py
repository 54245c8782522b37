#!/usr/bin/env python3
"""Readiness of an H2O node: the cloud has reached consensus with every expected member.

Ready means GET /3/Cloud answers with cloud_size == H2O_NODE_EXPECTED_COUNT, locked == true and
consensus == true, so no traffic reaches a node that is still forming (or splitting) a cloud.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def check(cloud: dict, expected: int) -> str | None:
    """None when the cloud is ready, else the reason it is not."""
    size = cloud.get("cloud_size")
    if size != expected:
        return f"cloud_size {size} != expected {expected}"
    if cloud.get("locked") is not True:
        return "cloud not locked"
    if cloud.get("consensus") is False:
        return "no consensus on membership"
    if cloud.get("cloud_healthy") is False:
        return "cloud unhealthy"
    return None


def fetch_cloud(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(f"{url.rstrip('/')}/3/Cloud", timeout=timeout) as response:
        return json.load(response)


def main() -> int:
    url = os.environ.get("H2O_READY_URL", "http://127.0.0.1:54321")
    expected = int(os.environ["H2O_NODE_EXPECTED_COUNT"])
    timeout = float(os.environ.get("H2O_READY_TIMEOUT_S", "3"))
    try:
        reason = check(fetch_cloud(url, timeout), expected)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        reason = f"cannot read /3/Cloud: {exc}"
    if reason:
        print(f"not ready: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
