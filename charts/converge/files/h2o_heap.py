#!/usr/bin/env python3
"""Start an H2O node with a JVM heap computed from the container's memory limit.

The heap is H2O_HEAP_PERCENT (at most 70) of the smallest limit known: the one Kubernetes passes
through the downward API (CONTAINER_MEMORY_LIMIT_MIB) and the cgroup's own. The rest of the limit
is left to XGBoost's native allocations, so the heap and the limit cannot drift apart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MAX_HEAP_PERCENT = 70
_MIB = 1024 * 1024
# cgroup v2 first, then v1; "max" or a huge v1 number means "no limit".
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
_NO_LIMIT_BYTES = 1 << 60


class HeapError(ValueError):
    """The heap cannot be computed safely (no limit, or a percentage over the cap)."""


def cgroup_limit_mib(paths: tuple[str, ...] = _CGROUP_FILES) -> int | None:
    """The cgroup memory limit in MiB, or None when unlimited or unreadable."""
    for path in paths:
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw == "max":
            return None
        limit = int(raw)
        return None if limit >= _NO_LIMIT_BYTES else limit // _MIB
    return None


def heap_mib(limit_mib: int | None, cgroup_mib: int | None, percent: int) -> int:
    """Heap size in MiB: `percent` of the smaller known limit, rounded down."""
    if not 1 <= percent <= MAX_HEAP_PERCENT:
        raise HeapError(f"H2O_HEAP_PERCENT={percent} must be within 1..{MAX_HEAP_PERCENT}")
    limits = [m for m in (limit_mib, cgroup_mib) if m]
    if not limits:
        raise HeapError("no memory limit: set resources.limits.memory on the H2O container")
    return min(limits) * percent // 100


def java_command(heap: int, env: dict[str, str]) -> list[str]:
    """The java command line of one H2O node."""
    ice_root = env.get("H2O_ICE_ROOT", "/tmp/h2o")
    return [
        env.get("JAVA", "java"),
        f"-Xmx{heap}m",
        f"-Xms{heap}m",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        f"-Djava.io.tmpdir={ice_root}",
        "-jar",
        env.get("H2O_JAR", "/opt/h2o/h2o.jar"),
        "-name",
        env.get("H2O_CLOUD_NAME", "converge"),
        "-port",
        env.get("H2O_PORT", "54321"),
        "-ice_root",
        ice_root,
        "-log_dir",
        f"{ice_root}/logs",
    ]


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    raw_limit = env.get("CONTAINER_MEMORY_LIMIT_MIB")
    heap = heap_mib(
        int(raw_limit) if raw_limit else None,
        cgroup_limit_mib(),
        int(env.get("H2O_HEAP_PERCENT", str(MAX_HEAP_PERCENT))),
    )
    cmd = java_command(heap, env) + argv
    if env.get("H2O_HEAP_DRY_RUN"):
        print(" ".join(cmd))
        return 0
    Path(env.get("H2O_ICE_ROOT", "/tmp/h2o"), "logs").mkdir(parents=True, exist_ok=True)
    print(f"h2o: heap {heap} MiB", file=sys.stderr, flush=True)
    os.execvp(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
