"""Predict function: latency at fixed rates and peak throughput, against H2O's REST predict.

The predict function runs exactly as the image runs it (``python -m converge.serving.serve_function
--target predict``: the function app under uvicorn, one worker) on loopback, with a real registry (Postgres), artifact store (S3) and cache (Redis). The
load generator is open-loop: request ``i`` is due at ``t0 + i / rate`` and its latency counts from
that moment, so a stalled server cannot hide its queue. Each run is bounded by count and time.

Scenarios: single rows and batches of 100 rows, cache miss (every request new features) and cache
hit (repeats); the three scoring modes (micro-batched, thread offload, in-loop for one row); and
the baseline: an H2O cluster scoring the same MOJO over its REST API (upload the rows as a frame,
``/3/Predictions``, read the result), as an H2O client does it.

Usage:  python benchmarks/bench_predict.py [--duration 5] [--models binomial,gbm_variable_importance]
                                          [--rates 1000,2000,3000] [--modes inline,batch,offload]
                                          [--no-h2o] [--no-write]

Results replace the "## Predict function" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path


from converge.checkout import REPO
from converge.serving.testing import read_rows
from converge.settings import Settings
from converge.stack.procs import free_port
from _load import closed_loop, open_loop, pct
from _predict_function import Bodies, prepare, start_predict
from _report import machine, model_files, publish  # noqa: E402

SECTION = "## Predict function"
H2O_CLIENT_THREADS = (4, 16, 64)
HOST = "127.0.0.1"




def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in a process group: the server's cost,
    which contention on a shared machine inflates far less than its latency."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total








# -- request bodies ----------------------------------------------------------------------------


# -- H2O REST baseline -------------------------------------------------------------------------
def _threads_back_to_back(
    fn, items: list, concurrency: int, duration: float
) -> tuple[list[float], float]:
    """Call ``fn(item)`` from ``concurrency`` threads back to back for ``duration`` seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration
    counter = iter(range(len(items)))

    def worker() -> None:
        while time.perf_counter() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            start = time.perf_counter()
            fn(items[i])
            latencies.append(time.perf_counter() - start)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return latencies, time.perf_counter() - t0


def h2o_baseline(port: int, mojo_path: Path, rows: list[dict], duration: float) -> dict:
    """Single rows and batches of 100 through H2O's REST API with the official client."""
    import warnings

    import h2o
    import pandas as pd

    from converge.mojo import load_mojo

    warnings.filterwarnings("ignore")
    h2o.connect(ip=HOST, port=port, verbose=False)
    h2o.no_progress()
    model = h2o.upload_mojo(str(mojo_path))
    domains = load_mojo(mojo_path).domains
    columns = [c for c in rows[0] if c in domains]
    # The column types the model was trained with: a one-row frame cannot be type-guessed.
    types = {c: ("enum" if domains[c] else "numeric") for c in columns}

    def score(batch: list[dict]) -> None:
        frame = h2o.H2OFrame(pd.DataFrame(batch, columns=columns), column_types=types)
        predictions = model.predict(frame)
        predictions.as_data_frame(use_multi_thread=False)
        h2o.remove([frame, predictions])

    out = {}
    for label, size in (("single", 1), ("batch100", 100)):
        batches = [[rows[(i * size + j) % len(rows)] for j in range(size)] for i in range(4000)]
        score(batches[0])  # warm-up
        # The client sleeps between job polls, so more threads keep H2O busier; keep the best.
        best: dict = {}
        for concurrency in H2O_CLIENT_THREADS:
            latencies, took = _threads_back_to_back(score, batches, concurrency, duration)
            result = {
                "concurrency": concurrency, "n": len(latencies), "throughput": len(latencies) / took,
                "p50": pct(latencies, 0.5) * 1e3, "p99": pct(latencies, 0.99) * 1e3,
            }  # fmt: skip
            if result["throughput"] > best.get("throughput", 0):
                best = result
        out[label] = best
    h2o.connection().close()
    return out


# -- the run -----------------------------------------------------------------------------------




async def measure_function(
    port: int, pgid: int, bodies: Bodies, duration: float, full: bool, rates: tuple[int, ...] = (1000,)
) -> dict:
    results: dict = {}

    async def measured(coro) -> dict:
        before = group_cpu(pgid)
        result = await coro
        result["cpu_us"] = (group_cpu(pgid) - before) / max(result["n"], 1) * 1e6
        return result

    # Warm-up: imports, first scores, connections.
    await closed_loop(port, bodies.misses(400), 8, 1.0)
    results["peak_single_miss"] = await measured(
        closed_loop(port, bodies.misses(int(4000 * duration)), 32, duration)
    )
    # The target scenarios, three times each: on a shared machine one stall decides a p99, so
    # the median run is reported and every run is listed.
    for rate in rates if full else (1000,):
        repeats = [
            await measured(open_loop(port, bodies.misses(int(rate * duration)), rate))
            for _ in range(3 if full else 1)
        ]
        repeats_by_p99 = sorted(repeats, key=lambda r: r["p99"])
        results[f"open_single_miss_{rate}"] = dict(
            repeats_by_p99[len(repeats) // 2], runs=[(r["p99"], r["late_p99"]) for r in repeats]
        )
    if not full:
        return results
    for rate in (100, 500):
        results[f"open_single_miss_{rate}"] = await measured(
            open_loop(port, bodies.misses(int(rate * duration)), rate)
        )
    results["open_single_hit_1000"] = await measured(
        open_loop(port, bodies.hits(int(1000 * duration)), 1000)
    )
    results["peak_single_hit"] = await measured(
        closed_loop(port, bodies.hits(int(6000 * duration)), 32, duration)
    )
    results["open_batch100_miss_20"] = await measured(
        open_loop(port, bodies.misses(int(20 * duration), 100), 20)
    )
    results["peak_batch100_miss"] = await measured(
        closed_loop(port, bodies.misses(int(100 * duration), 100), 8, duration)
    )
    results["peak_batch100_hit"] = await measured(
        closed_loop(port, bodies.hits(int(400 * duration), 100), 8, duration)
    )
    return results


def render(
    args: argparse.Namespace, runs: dict, modes: dict, h2o: dict, took: float, algos: dict
) -> str:
    """``runs[model]``: full results in the default mode; ``modes[mode]``: first model per mode."""
    main_mode = next(iter(modes))
    first = next(iter(runs))
    cmd = (
        f"python benchmarks/bench_predict.py --duration {args.duration:g} --models {args.models}"
        f" --rates {','.join(map(str, args.target_rates))}"
    )
    lines = [
        SECTION,
        "",
        f"`{cmd}` ({datetime.now(UTC):%Y-%m-%d}, {took:.0f} s wall, {args.duration:g} s per scenario).",
        f"Machine: {machine()}, shared with other jobs",
        f"(load average {os.getloadavg()[0]:.1f} at the end): absolute latencies are noisy, ratios within one",
        "run and server CPU per request are the comparable parts. Server: `python -m",
        "converge.serving.serve_function --target predict` (the image's command: the function app under uvicorn),",
        "one worker, loopback, real Postgres registry, S3",
        "artifact and Redis cache; models scored by `converge.mojo` (native backend). Open-loop generator:",
        "latency counts from each request's due time; a miss sends new features every request, a hit",
        "repeats one body; peak = 32 (single row) or 8 (batch) clients back to back. CPU = server",
        "process CPU time per request.",
        "",
        "| model | scenario | offered | achieved req/s | p50 ms | p99 ms | CPU us/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, res in runs.items():
        label = f"{model} ({algos[model]})"

        def open_row(name: str, key: str, res: dict = res, label: str = label) -> None:
            r = res.get(key)
            if r:
                lines.append(
                    f"| {label} | {name} | {r['rate']:,.0f}/s | {r['achieved']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['cpu_us']:,.0f} | {r['errors']} |"
                )

        def peak_row(name: str, key: str, res: dict = res, label: str = label) -> None:
            r = res.get(key)
            if r:
                lines.append(
                    f"| {label} | {name} | peak, c={r['concurrency']} | {r['throughput']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['cpu_us']:,.0f} | {r['errors']} |"
                )

        for rate in sorted({100, 500, *args.target_rates}):
            open_row("single row, miss", f"open_single_miss_{rate}")
        peak_row("single row, miss", "peak_single_miss")
        open_row("single row, hit", "open_single_hit_1000")
        peak_row("single row, hit", "peak_single_hit")
        open_row("batch of 100, miss", "open_batch100_miss_20")
        peak_row("batch of 100, miss", "peak_batch100_miss")
        peak_row("batch of 100, hit", "peak_batch100_hit")

    lines += ["", f"Scoring modes (`CONVERGE_SCORING_MODE`; `{main_mode}` is the default), {first}, single row, cache miss:", "",
              "| mode | p50 ms @1000/s | p99 ms @1000/s | achieved @1000/s | CPU us/req @1000/s | peak req/s | CPU us/req at peak |",
              "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for mode, r in modes.items():
        o, p = r["open_single_miss_1000"], r["peak_single_miss"]
        lines.append(
            f"| {mode} | {o['p50']:.2f} | {o['p99']:.2f} | {o['achieved']:,.0f} | {o['cpu_us']:,.0f} | {p['throughput']:,.0f} | {p['cpu_us']:,.0f} |"
        )
    lines += ["", "`inline` micro-batches the requests that reach the scorer in one loop iteration and scores",
              "them on the loop; `batch` does the same through a thread pool sized to the cores; `offload`",
              "sends each request to the pool on its own. `+ff`: the same function app behind",
              "functions-framework's aio ASGI wrapper (`--wrapper functions-framework`; what the wrapper costs)."]  # fmt: skip

    if h2o:
        lines += [
            "",
            "Baseline, same run: H2O-3 REST on one local node (all cores): `h2o.upload_mojo` once, then per",
            "request `H2OFrame` upload + parse, `model.predict` (`/3/Predictions`), fetch, remove; the",
            "official Python client, the best of 4, 16 and 64 threads back to back (the client sleeps between",
            "job polls). converge: peak (cache miss) from the table above.",
            "",
            "| model | request | H2O req/s | H2O threads | H2O p50 ms | converge req/s | ratio |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for model, base in h2o.items():
            for name, key, ours_key in (
                ("single row", "single", "peak_single_miss"),
                ("batch of 100", "batch100", "peak_batch100_miss"),
            ):
                ours = runs[model][ours_key]["throughput"]
                theirs = base[key]["throughput"]
                lines.append(
                    f"| {model} | {name} | {theirs:,.1f} | {base[key]['concurrency']} | {base[key]['p50']:.1f}"
                    f" | {ours:,.0f} | {ours / theirs:,.1f}x |"
                )

    lines += ["", "Targets:"]
    for model, res in runs.items():
        o = res["open_single_miss_1000"]
        lines.append(
            f"- {model}: at 1,000 req/s (single row, miss) the server used {o['cpu_us']:,.0f} us of CPU per"
            f" request, {o['cpu_us'] / 10:,.0f}% of one core; latency beyond the scoring time is queueing"
            " whenever the process did not get that share of this shared machine."
        )
    for model, res in runs.items():
        for rate in args.target_rates:
            o = res[f"open_single_miss_{rate}"]
            ok = o["p99"] < 5 and o["errors"] == 0 and o["achieved"] >= 0.95 * rate
            runs_text = ", ".join(f"{p:.2f} ms (generator late {g:.2f} ms)" for p, g in o["runs"])
            lines.append(
                f"- {model}: single-row cache-miss p99 < 5 ms at {rate:,} req/s on one worker: "
                f"**{'met' if ok else 'not met'}** in the median run (p99 {o['p99']:.2f} ms, "
                f"{o['achieved']:,.0f} req/s achieved, server CPU {o['cpu_us']:,.0f} us/req); p99 of"
                f" each run: {runs_text}."
            )
        if model in h2o:
            ratio = res["peak_single_miss"]["throughput"] / h2o[model]["single"]["throughput"]
            lines.append(
                f"- {model}: >= 10x H2O REST throughput (single row): **{'met' if ratio >= 10 else 'not met'}** ({ratio:,.1f}x)."
            )
    lines.append(
        "- *Generator late* is the load generator's own p99 delay in sending (it shares the two"
        " cores): a stall there counts against the server here."
    )
    lines += ["", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    ap.add_argument(
        "--models", default="binomial,gbm_variable_importance", help="corpus MOJO names, or trained ones (leader)"
    )
    ap.add_argument(
        "--modes",
        default="inline,batch,offload,inline+ff",
        help="scoring modes (the first gets the full run); '+ff': behind functions-framework",
    )
    ap.add_argument(
        "--rates", default="1000,2000,3000",
        help="open-loop rates of the single-row cache-miss target (3 runs each, median reported)",
    )  # fmt: skip
    ap.add_argument("--no-h2o", action="store_true", help="skip the H2O REST baseline")
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    args.target_rates = tuple(int(r) for r in args.rates.split(","))

    from converge.mojo import load_mojo
    from converge.stack.h2o import H2O
    from converge.stack.postgres import Postgres
    from converge.stack.redis import Redis
    from converge.stack.s3 import S3

    names = args.models.split(",")
    models: dict[str, tuple[bytes, list[dict]]] = {}
    bodies: dict[str, Bodies] = {}
    algos: dict[str, str] = {}
    for i, name in enumerate(names):
        path, inputs = model_files(REPO, name)
        mojo = path.read_bytes()
        rows = read_rows(inputs, 200)
        model = load_mojo(mojo)
        numeric = next(n for n in model.feature_names if model.domains.get(n) is None)
        registered = name.replace("_", "-")
        models[registered] = (mojo, rows)
        bodies[name] = Bodies(rows, numeric, None if i == 0 else registered)
        algos[name] = f"{model.algorithm}, {model.category}"
    started = time.perf_counter()
    procs: list = []
    runs: dict = {}
    modes: dict = {}
    h2o: dict = {}
    with tempfile.TemporaryDirectory(prefix="converge-bench-") as tmp:
        work = Path(tmp)
        try:
            # The local stack's own services, throw-away, in a temporary directory.
            pg = Postgres(work, free_port(), durable=False)
            redis = Redis(work, free_port())
            s3 = S3(work, free_port())
            env: dict[str, str] = {}
            for service in (pg, redis, s3):
                service.start()
                procs.append(service)
                env.update(service.env())
            # Every address explicit: nothing may fall back to a running `converge up` stack.
            env["CONVERGE_DATABASE_URL"] = pg.dsn
            settings = Settings(
                **{k.removeprefix("CONVERGE_").lower(): v for k, v in env.items()},
                default_model=names[0].replace("_", "-"), registry_poll_s=30.0, state_dir=work,
            )  # fmt: skip
            for field in ("database_url", "redis_url", "s3_endpoint_url"):
                value = getattr(settings, field)
                value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
                if not any(value == v for v in env.values()):
                    raise SystemExit(f"{field} does not point at the benchmark's own stack")
            asyncio.run(prepare(settings, models))
            mode_list = args.modes.split(",")
            for mode in mode_list:
                fn = start_predict(settings, work, mode)
                procs.append(fn)
                try:
                    for name in names if mode == mode_list[0] else names[:1]:
                        result = asyncio.run(
                            measure_function(
                                fn.port,
                                fn.proc.pid,
                                bodies[name],
                                args.duration,
                                full=mode == mode_list[0],
                                rates=args.target_rates,
                            )
                        )
                        if mode == mode_list[0]:
                            runs[name] = result
                        if name == names[0]:
                            modes[mode] = result
                        print(mode, name, json.dumps(result), flush=True)
                finally:
                    fn.stop()
            if not args.no_h2o:
                node = H2O(work, free_port(pair=True), heap="1g")
                node.start()
                procs.append(node)
                for name in names:
                    h2o[name] = h2o_baseline(
                        node.port,
                        model_files(REPO, name)[0],
                        models[name.replace("_", "-")][1],
                        args.duration,
                    )
                    print("h2o", name, json.dumps(h2o[name]), flush=True)
        finally:
            for p in reversed(procs):
                p.stop()
    publish(render(args, runs, modes, h2o, time.perf_counter() - started, algos), SECTION, not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
