"""The harness of the per-kind MOJO benchmarks (``bench_mojo_unsupervised.py``,
``bench_mojo_more_kinds.py``, ``bench_mojo_new_kinds.py``): one model of each kind from the
conformance corpus, native against pure-Java genmodel in the same run, batch of dict records and
one record at a time."""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from _mojo import best_rate, fmt, java_harness, java_run, machine_info, single_records, write_csv
from _report import write_section
from converge.checkout import CONFORMANCE
from converge.mojo import load_mojo


def corpus_rows(model, case: Path, n: int) -> list[dict]:
    """The case's input rows typed like JSON (numbers as floats, levels as text), repeated to n."""
    types = model.feature_types
    with open(case / "input.csv", newline="", encoding="utf-8") as f:
        base = [{k: (float(v) if types.get(k) == "numeric" else v) for k, v in r.items()
                 if v not in ("", "NA") and k in types} for r in csv.DictReader(f)]
    return [base[i % len(base)] for i in range(n)]


def measure(label: str, name: str, share: float, args, work: Path, classpath: str) -> dict:
    print(f"== {label}", flush=True)
    case = CONFORMANCE / name
    mojo = case / "model.zip"
    native = load_mojo(mojo, backend="native")
    rows = corpus_rows(native, case, max(100, int(args.rows * share)))
    csv_path = work / f"{name}.csv"
    write_csv(rows, native.feature_names, csv_path)
    one = rows[: args.single_calls]
    one_csv = work / f"{name}.one.csv"
    write_csv(one, native.feature_names, one_csv)
    rounds: dict[str, list] = {}
    for _ in range(args.rounds):
        put = lambda k, v: rounds.setdefault(k, []).append(v)  # noqa: E731
        put("native_records", best_rate(partial(native.predict_records, rows), len(rows), 1))
        put("java_easy", float(java_run([str(mojo), str(csv_path), "easy", str(len(rows)), "3"], classpath)[0]))
        put("single_records", single_records(native, one))
        put("java_single", float(java_run([str(mojo), str(one_csv), "single", str(len(one)), "10"], classpath)[0]))
    r = {"label": label, "case": name, "rows": len(rows)}
    r.update({k: statistics.median(v) for k, v in rounds.items()})
    print(r, flush=True)
    return r


def report(results, info, args, started, elapsed, section: str, script: str, notes: str) -> str:
    out = [section, "",
           f"`python benchmarks/{script}` ({started:%Y-%m-%d}, {elapsed:.0f} s wall).",
           (f"Machine: {info['cpu']}, {info['nproc']} cores, {info['os']}; Python {info['python']}, "
            f"NumPy {info['numpy']}; {info['java']}; h2o-genmodel from the h2o 3.46.0.11 wheel. "
            f"Load average before/after: {info['load']:.1f} / {info['load_after']:.1f} (shared machine: "
            "compare the ratios, measured in the same run on the same rows)."),
           "",
           ("Models: the conformance corpus's (`tests/data/conformance/`), scored on their input rows "
            f"repeated; {args.rounds} rounds, native then Java in each, medians. Batch: native "
            "`predict_records` on dict rows against `EasyPredictModelWrapper` on typed `RowData` (best "
            "of 3 JIT-warm passes). One row: each of "
            f"{args.single_calls:,} records scored and timed on its own after a warming pass, median."),
           "",
           "| model | corpus case | batch rows | native rows/s | Java rows/s | native / Java | native one row us | Java one row us | Java / native |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        out.append(
            f"| {r['label']} | `{r['case']}` | {r['rows']:,} | {fmt(r['native_records'])} | "
            f"{fmt(r['java_easy'])} | {r['native_records'] / r['java_easy']:.2f}x | "
            f"{r['single_records']:.1f} | {r['java_single']:.1f} | {r['java_single'] / r['single_records']:.2f}x |")
    out += ["", notes, ""]
    return "\n".join(out) + "\n"


def main(models, section: str, script: str, notes: str, doc: str) -> None:
    """Measure ``models`` ((label, corpus case, share of --rows)) and write ``section``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--single-calls", type=int, default=2000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="bench-mojo-unsupervised-"))
    try:
        classpath = java_harness(work)
        results = [measure(label, name, share, args, work, classpath) for label, name, share in models]
        info["load_after"] = os.getloadavg()[0]
        text = report(results, info, args, started, time.perf_counter() - t0, section, script, notes)
        print(text)
        if not args.no_write:
            write_section(text, section)
    finally:
        shutil.rmtree(work, ignore_errors=True)
