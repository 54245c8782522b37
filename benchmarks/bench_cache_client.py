"""The prediction cache's Redis client: converge's pipelined RESP connection against redis-py.

The predict function sends one ``MGET`` per event-loop iteration on its hot path, so the client's
CPU per command is a share of every request. Both clients send the same commands to the same real
Redis (a local process on a free port), one after the other in each round; the figure is the
process CPU time per command (the steadier measure on a shared machine) and the wall time.

    python benchmarks/bench_cache_client.py [--commands 20000] [--rounds 3] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _report import machine, publish

from converge.cache import RedisPyCommands
from converge.cache.resp import RespClient
from converge.stack.procs import free_port
from converge.stack.redis import Redis

KEYS = ["converge:pred:bench:1:" + "0" * 64]


async def _measure(commands, n: int, callers: int) -> tuple[float, float]:
    """CPU and wall microseconds per MGET, ``callers`` tasks sharing the client."""
    await commands.mget(KEYS)  # connected and warm

    async def caller(count: int) -> None:
        for _ in range(count):
            await commands.mget(KEYS)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(n // callers) for _ in range(callers)))
    done = (n // callers) * callers
    return (time.process_time() - cpu) / done * 1e6, (time.perf_counter() - wall) / done * 1e6


async def _run(url: str, n: int, rounds: int) -> dict:
    import redis.asyncio as redis_asyncio

    results: dict = {}
    resp = RespClient.from_url(url, timeout_s=2.0)
    pyredis = redis_asyncio.from_url(url)
    clients = {"converge.cache.resp (pipelined, hiredis)": resp, "redis-py asyncio": RedisPyCommands(pyredis)}
    for _ in range(rounds):
        for callers in (1, 32):
            for name, commands in clients.items():
                results.setdefault((name, callers), []).append(await _measure(commands, n, callers))
    await resp.aclose()
    await pyredis.aclose()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--commands", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Redis(Path(tmp), free_port())
        server.start()
        try:
            started = time.perf_counter()
            results = asyncio.run(_run(server.url, args.commands, args.rounds))
            wall_s = time.perf_counter() - started
        finally:
            server.stop()
    lines = [
        "## Cache client",
        "",
        f"`python benchmarks/bench_cache_client.py --commands {args.commands} --rounds {args.rounds}` "
        f"({time.strftime('%Y-%m-%d')}, {wall_s:.0f} s wall). Machine: {machine()}.",
        "",
        "One-key `MGET` (the cache's read) against a real Redis on loopback; both clients in the same "
        "process and rounds, alternated; medians over the rounds. CPU is this process's CPU time per "
        "command (client side: encoding, parsing, event-loop work).",
        "",
        "| client | concurrent callers | CPU us/command | wall us/command | CPU vs redis-py |",
        "|---|---:|---:|---:|---:|",
    ]
    for callers in (1, 32):
        base = statistics.median(c for c, _ in results[("redis-py asyncio", callers)])
        for name in ("converge.cache.resp (pipelined, hiredis)", "redis-py asyncio"):
            cpu = statistics.median(c for c, _ in results[(name, callers)])
            wall = statistics.median(w for _, w in results[(name, callers)])
            lines.append(f"| {name} | {callers} | {cpu:.1f} | {wall:.1f} | {cpu / base:.2f}x |")
    publish("\n".join(lines) + "\n\n", "## Cache client", not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
