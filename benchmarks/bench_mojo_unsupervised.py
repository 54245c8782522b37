"""MOJO scoring of anomaly-detection, clustering, dimension-reduction and autoencoder models (and
a StackedEnsemble over every base-model kind): the native scorer against pure-Java h2o-genmodel,
one model of each kind, in the same run.

The models and rows are the conformance corpus's (``tests/data/conformance/<case>/``: small MOJOs
trained by h2o 3.46.0.11 on generated data; inputs with missing values, unseen levels and
out-of-range numbers), the input rows repeated up to ``--rows``. Each round runs native, then
Java (``benchmarks/mojo_harness.java``, JIT-warm): a batch of dict records (native
``predict_records`` against ``EasyPredictModelWrapper``), then one record per call, each call
timed (medians). Medians over the rounds.

Usage: python benchmarks/bench_mojo_unsupervised.py [--rows 20000] [--rounds 3] [--no-write]
Results replace the section named below in BENCHMARKS.md.
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
from functools import partial
from pathlib import Path


from bench_mojo import (  # noqa: E402 - the shared harness and helpers
    ROOT,
    best_rate,
    fmt,
    java_harness,
    java_run,
    machine,
    single_records,
    write_csv,
    write_section,
)

from converge.mojo import load_mojo  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "conformance"
SECTION = "## MOJO scoring: anomaly detection, clustering, dimension reduction, autoencoders, ensembles"
#: (label, corpus case, share of --rows: GLRM runs an optimisation per row)
SET = [
    ("IsolationForest", "isolation_forest", 1.0),
    ("ExtendedIsolationForest", "extended_isolation_forest", 1.0),
    ("KMeans", "kmeans_standardized", 1.0),
    ("PCA", "pca_standardized", 1.0),
    ("GLRM", "glrm_quadratic", 0.1),
    ("DeepLearning autoencoder", "deeplearning_autoencoder", 1.0),
    ("StackedEnsemble (multinomial; GBM, DRF, XRT, GLM, XGBoost, DeepLearning; DRF metalearner)",
     "stackedensemble_multinomial_drf", 0.25),
]


def corpus_rows(model, case: Path, n: int) -> list[dict]:
    """The case's input rows typed like JSON (numbers as floats, levels as text), repeated to n."""
    types = model.feature_types
    with open(case / "input.csv", newline="", encoding="utf-8") as f:
        base = [{k: (float(v) if types.get(k) == "numeric" else v) for k, v in r.items()
                 if v not in ("", "NA") and k in types} for r in csv.DictReader(f)]
    return [base[i % len(base)] for i in range(n)]


def measure(label: str, name: str, share: float, args, work: Path, classpath: str) -> dict:
    print(f"== {label}", flush=True)
    case = CORPUS / name
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


NOTES = ("Notes: these corpus models are small (a few trees, a few hundred parameters), so one "
         "row costs little more than the call itself: native one-row times are mostly the "
         "Python call and the record's encoding (about 2 us), against a JIT-compiled Java "
         "call. IsolationForest walks its trees in the compiled tree walker; "
         "ExtendedIsolationForest, KMeans and PCA run in NumPy for batches and plain Python "
         "for one row; the autoencoder uses DeepLearning's compiled layers; GLRM runs "
         "genmodel's per-row gradient descent (up to 100 iterations of 10 step sizes) for "
         "all rows of a batch at once in NumPy, and in plain Python for one row.")


def report(results, info, args, started, elapsed, section: str = SECTION,
           script: str = "bench_mojo_unsupervised.py", notes: str = NOTES) -> str:
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


def main(models=SET, section: str = SECTION, script: str = "bench_mojo_unsupervised.py",
         notes: str = NOTES, doc: str = __doc__) -> None:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--single-calls", type=int, default=2000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    info = machine()
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


if __name__ == "__main__":
    main()
