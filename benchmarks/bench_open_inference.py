"""Open Inference Protocol: converge's V2 endpoint against KServe's own model server, same MOJO.

Three servers score the same rows in one run, each one worker on loopback:
- converge's predict function (as the image serves it), through its V2 route;
- the same function through converge's native JSON route;
- KServe's Python model server (`kserve.ModelServer`) hosting the MOJO the way a KServe user does
  it today: a custom `kserve.Model` scoring with h2o-genmodel through JPype
  (benchmarks/kserve_mojo_server.py).
Every request carries new features (cache misses), so converge's cache never helps it. Reported:
peak throughput (32 clients back to back) and p50/p99 at a fixed open-loop rate.

Usage:  python benchmarks/bench_open_inference.py [--duration 5] [--rate 200] [--no-write]
Results replace the "## Open Inference Protocol" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


import orjson  # noqa: E402
from _report import machine, write_section  # noqa: E402
from _servers import kserve_server, local_stack  # noqa: E402
from _load import closed_loop, open_loop
from _predict_function import V2Bodies, prepare, start_predict

from converge.checkout import CORPUS
from converge.mojo import load_mojo  # noqa: E402
from converge.serving.testing import read_rows  # noqa: E402

SECTION = "## Open Inference Protocol"




async def measure(port: int, path: str, make, duration: float, rate: float) -> dict:
    await closed_loop(port, make(300), 8, 1.0, path=path)  # warm-up
    peak = await closed_loop(port, make(int(3000 * duration)), 32, duration, path=path)
    fixed = await open_loop(port, make(int(rate * duration)), rate, path=path)
    return {"peak": peak, "fixed": fixed}


def render(results: dict, args, took: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION,
        "",
        f"Command: `python benchmarks/bench_open_inference.py --duration {args.duration:g} --rate {args.rate:g}`"
        f" ({when}, {took:.0f} s). Machine: {machine()}. One worker per server, loopback, every request"
        " new features (cache misses). KServe = `kserve.ModelServer` with a custom `kserve.Model` scoring"
        " through h2o-genmodel (JPype), measured in the same run.",
        "",
        f"| model | server | peak req/s | peak p99 ms | p50 ms at {args.rate:g}/s | p99 ms at {args.rate:g}/s | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for model, servers in results.items():
        for server, r in servers.items():
            lines.append(
                f"| {model} | {server} | {r['peak']['throughput']:.0f} | {r['peak']['p99']:.1f} "
                f"| {r['fixed']['p50']:.1f} | {r['fixed']['p99']:.1f} "
                f"| {r['peak']['errors'] + r['fixed']['errors']} |"
            )
    lines += ["", "Ratios (converge V2 / KServe, same run):", ""]
    for model, servers in results.items():
        v2, ks = servers["converge V2"], servers["KServe + genmodel"]
        throughput = v2["peak"]["throughput"] / ks["peak"]["throughput"]
        p99 = v2["fixed"]["p99"] / ks["fixed"]["p99"]
        verdict = "met" if throughput >= 3 and p99 < 1 else "not met"
        lines.append(
            f"- {model}: throughput {throughput:.1f}x, p99 at {args.rate:g}/s {p99:.2f}x of KServe's"
            f" (target: >= 3x throughput at lower p99: {verdict})"
        )
    return "\n".join(lines) + "\n\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    ap.add_argument("--rate", type=float, default=200.0, help="fixed open-loop rate (req/s)")
    ap.add_argument("--models", default="binomial,gbm_variable_importance", help="corpus MOJO names")
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()

    corpus = CORPUS
    names = args.models.split(",")
    started = time.perf_counter()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="converge-bench-v2-") as tmp:
        work = Path(tmp)
        with local_stack(work, names[0].replace("_", "-")) as settings:
            models = {n.replace("_", "-"): ((corpus / f"{n}.zip").read_bytes(), read_rows(corpus / f"{n}.input.csv", 200)) for n in names}
            asyncio.run(prepare(settings, models))
            fn = start_predict(settings, work, "inline")
            try:
                for name in names:
                    registered = name.replace("_", "-")
                    mojo, rows = models[registered]
                    bodies = V2Bodies(load_mojo(mojo), rows)
                    v2_path = f"/v2/models/{registered}/infer"
                    # the native route scores the default model; name it for the others
                    native = (
                        bodies.native
                        if registered == settings.default_model
                        else (lambda n, b=bodies, r=registered: [orjson.dumps({"model": r, **orjson.loads(x)}) for x in b.native(n)])
                    )
                    with kserve_server(registered, corpus / f"{name}.zip", work / f"kserve-{name}.log") as (port, _):
                        results[name] = {
                            "converge V2": asyncio.run(measure(fn.port, v2_path, bodies.v2, args.duration, args.rate)),
                            "converge native": asyncio.run(measure(fn.port, "/predict", native, args.duration, args.rate)),
                            "KServe + genmodel": asyncio.run(measure(port, v2_path, bodies.v2, args.duration, args.rate)),
                        }
                    print(name, json.dumps(results[name]), flush=True)
            finally:
                fn.stop()
    text = render(results, args, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
