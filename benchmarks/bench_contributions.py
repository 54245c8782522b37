"""SHAP contributions: converge's compiled TreeSHAP against pure-Java genmodel's ``predictContributions``
(JIT-warm, ``benchmarks/mojo_harness.java``), on the conformance corpus's tree models, in one run.

Batch: rows/s over the case's input rows repeated to ``--rows`` (best of the rounds); one row:
median microseconds of one row's contributions. Both sides read the same CSV rows.

Usage: python benchmarks/bench_contributions.py [--rows 2000] [--rounds 3] [--no-write]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _mojo import best_rate, java_harness, java_run, machine_info, write_csv
from _report import write_section
from converge.checkout import CONFORMANCE
from converge.mojo import load_mojo

SECTION = "## SHAP contributions"
SET = [
    ("GBM binomial, 10 trees of depth 5", "shap_gbm_binomial"),
    ("DRF binomial, 6 trees of depth 8", "shap_drf_binomial"),
    ("XGBoost binomial, 8 trees of depth 4", "shap_xgboost_binomial"),
]


def case_rows(case: Path, n: int) -> tuple[list[dict], list[str]]:
    with open(case / "input.csv", newline="") as f:
        columns, *cells = list(csv.reader(f))
    rows = [{c: v for c, v in zip(columns, row) if v != ""} for row in cells]
    return [rows[i % len(rows)] for i in range(n)], columns


def measure(label: str, name: str, args, work: Path, classpath: str) -> dict:
    case = CONFORMANCE / name
    model = load_mojo(case / "model.zip", backend="native")
    rows, columns = case_rows(case, args.rows)
    data = work / f"{name}.csv"
    write_csv(rows, columns, data)
    model.contributions(rows[:50])  # builds the trees' SHAP structures once
    native = best_rate(lambda: model.contributions(rows), len(rows), args.rounds)
    single = []
    for row in rows[:300]:
        t = time.perf_counter()
        model.contributions([row])
        single.append(time.perf_counter() - t)
    java = float(java_run([str(case / "model.zip"), str(data), "contrib", str(len(rows)), str(args.rounds)], classpath)[0])
    java_single = float(java_run([str(case / "model.zip"), str(data), "contrib_single", "300", "20"], classpath)[0])
    return {"label": label, "case": name, "rows": len(rows), "native": native, "java": java,
            "single": statistics.median(single) * 1e6, "java_single": java_single}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    started, t0 = datetime.now(UTC), time.perf_counter()
    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="bench-contributions-"))
    try:
        classpath = java_harness(work)
        results = [measure(label, name, args, work, classpath) for label, name in SET]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = [SECTION, "",
           f"`python benchmarks/bench_contributions.py --rows {args.rows} --rounds {args.rounds}` "
           f"({started:%Y-%m-%d}, {time.perf_counter() - t0:.0f} s). Machine: {info['cpu']}, "
           f"{info['nproc']} cores; Python {info['python']}; {info['java']}. Load average "
           f"{info['load']:.1f} / {os.getloadavg()[0]:.1f}.",
           "",
           "Both sides give the same values bit for bit (`tests/mojo/test_contributions.py`).",
           "",
           "| model | corpus case | native rows/s | Java rows/s | native / Java | native one row µs | Java one row µs |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        out.append(f"| {r['label']} | `{r['case']}` | {r['native']:,.0f} | {r['java']:,.0f} | "
                   f"{r['native'] / r['java']:.2f}x | {r['single']:.0f} | {r['java_single']:.0f} |")
    ratios = [r["native"] / r["java"] for r in results]
    verdict = ("faster than" if min(ratios) > 1 else "slower than" if max(ratios) < 1 else "mixed against")
    out += ["", f"converge walks TreeSHAP in C (`_kernels.c: tree_shap`), float32 operation by "
            f"float32 operation in genmodel's order, so the values are genmodel's exactly; batches are "
            f"{verdict} the JIT-compiled Java here ({min(ratios):.2f}x to {max(ratios):.2f}x). One row "
            "also pays for encoding the record (a NumPy call). Contributions run in the predict "
            "function's thread pool, never on its event loop.", ""]
    text = "\n".join(out)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
