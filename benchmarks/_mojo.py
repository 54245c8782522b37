"""Helpers shared by the MOJO scoring benchmarks: rows to CSV, timing, the pure-Java side
(``mojo_harness.java`` compiled against genmodel) and the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from converge.mojo.backends.genmodel import find_h2o_jar

HARNESS = Path(__file__).resolve().parent / "mojo_harness.java"


def write_csv(rows: list[dict], names: list[str], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(names) + "\n")
        f.writelines(",".join("" if r.get(c) is None else (repr(r[c]) if isinstance(r[c], float) else r[c])
                             for c in names) + "\n" for r in rows)


def best_rate(fn, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def single_row(fn, calls: int) -> dict:
    for _ in range(min(200, calls)):
        fn()
    wall = []
    c0 = time.thread_time()
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
    cpu = (time.thread_time() - c0) / calls
    wall.sort()
    return {"p50": wall[len(wall) // 2] * 1e6, "p99": wall[int(len(wall) * 0.99)] * 1e6, "cpu": cpu * 1e6}


def single_records(model, rows: list[dict]) -> float:
    """Median microseconds of ``predict_records([row])``, one call per row, after a warming pass."""
    for rec in rows:
        model.predict_records([rec])
    wall = []
    for rec in rows:
        t = time.perf_counter()
        model.predict_records([rec])
        wall.append(time.perf_counter() - t)
    return statistics.median(wall) * 1e6


def java_harness(work: Path) -> str:
    """Compile ``mojo_harness.java`` into ``work``; the class path that runs it with genmodel."""
    jar = find_h2o_jar()
    subprocess.run(["javac", "-d", str(work), "-cp", str(jar), str(HARNESS)], check=True)
    return f"{jar}{os.pathsep}{work}"


def java_run(args: list[str], classpath: str) -> list[str]:
    res = subprocess.run(["java", "-Xmx2g", "-cp", classpath, "MojoHarness", *args],
                         capture_output=True, text=True, check=True)
    return res.stdout.strip().split()


def machine_info() -> dict:
    """CPU, cores, Python, NumPy, Java and the load average: the run's conditions."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    java = subprocess.run(["java", "-version"], capture_output=True, text=True,
                          check=True).stderr.splitlines()[0]
    return {"cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "java": java, "os": f"{platform.system()} {platform.release()}",
            "load": os.getloadavg()[0]}


def fmt(v: float) -> str:
    return f"{v:,.0f}"
