#!/usr/bin/env python3
"""Readiness of an H2O node: the cloud has reached consensus, and this node is its leader.

Ready means GET /3/Cloud answers with cloud_size == H2O_NODE_EXPECTED_COUNT, locked == true and
consensus == true, so no traffic reaches a node that is still forming (or splitting) a cloud; and,
as H2O's Kubernetes guide prescribes, GET /kubernetes/isLeaderNode on the node's Kubernetes API
port (H2O_K8S_API_PORT) answers 200. Only the leader is then ready, so the client Service routes
every request to it (H2O expects its clients to talk to the leader; the other nodes stay reachable
to their peers through the headless Service, which publishes not-ready addresses).
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


def is_leader(url: str, timeout: float) -> bool:
    """H2O answers 200 on the leader and 404 on every other node."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/kubernetes/isLeaderNode", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return False


def main() -> int:
    url = os.environ.get("H2O_READY_URL", "http://127.0.0.1:54321")
    leader_url = os.environ.get("H2O_LEADER_URL")  # unset: every formed node is ready
    expected = int(os.environ["H2O_NODE_EXPECTED_COUNT"])
    timeout = float(os.environ.get("H2O_READY_TIMEOUT_S", "3"))
    try:
        reason = check(fetch_cloud(url, timeout), expected)
        if reason is None and leader_url and not is_leader(leader_url, timeout):
            reason = "not the leader node (clients talk to the leader only)"
    except (OSError, urllib.error.URLError, ValueError) as exc:
        reason = f"cannot read /3/Cloud: {exc}"
    if reason:
        print(f"not ready: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
