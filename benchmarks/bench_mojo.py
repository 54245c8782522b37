"""MOJO scoring: the native scorer against pure-Java h2o-genmodel, on an AutoML-shaped model set.

The models come from ``benchmarks/bench_mojo_models.py`` (h2o 3.46.0.11, generated data, cached
under ``benchmarks/.work/models``): a StackedEnsemble leader over a GLM, two GBMs, a DRF of about
170k nodes and two XGBoost models; the leader of a real ``H2OAutoML`` run; the 50-tree GBM and
the DRF on their own; DRFs of increasing size for load cost against MOJO size. Rows are the generated data (with NAs), typed like parsed
JSON: floats for numeric columns, strings for categorical ones.

Measured in one run, on the same rows, in rounds that run native and then Java (medians):
- batch throughput (rows/s) for 100k rows: native ``predict_records`` (dict rows) and
  ``predict_numpy`` (encoded matrix) against pure-Java genmodel (``benchmarks/mojo_harness.java``,
  compiled with javac here): ``EasyPredictModelWrapper`` on typed ``RowData`` and ``score0`` on
  encoded rows, best of a few JIT-warm passes;
- one dict record per call, each call timed: native ``predict_records([row])`` against
  JIT-warm ``EasyPredictModelWrapper.predictRaw(row)``;
- cold start: a fresh process from spawn to its first prediction (interleaved runs, medians),
  with the load time, the native process's RSS and the JVM's heap after a full GC;
- load time against MOJO size (fresh process each, medians).

Usage: python benchmarks/bench_mojo.py [--rows 100000] [--rounds 3] [--cold-runs 7] [--no-write]
``PYTHONPATH=<other checkout>/src`` points the native side at another source tree (a baseline
checkout with its extension built).
Results replace the "## MOJO scoring" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

import converge
from converge.checkout import REPO
from converge.mojo import load_mojo
from converge.reference import GenmodelReference
from _mojo import (
    best_rate,
    fmt,
    java_harness,
    java_run,
    machine_info,
    single_row,
    single_records,
    write_csv,
)
from _report import write_section

MODELS = REPO / "benchmarks" / ".work" / "models"
#: the source tree the native side runs (this checkout's, or the one PYTHONPATH names)
SRC = Path(converge.__file__).resolve().parents[1]
SECTION = "## MOJO scoring"
SET = [("StackedEnsemble (AutoML-shaped leader)", "leader"),
       ("H2OAutoML leader (StackedEnsemble_AllModels)", "automl"), ("GBM, 50 trees", "gbm50"),
       ("DRF, 50 trees, ~170k nodes", "drf")]
SIZED = ["drf_1mb", "drf_10mb", "drf_50mb"]


# -- inputs ------------------------------------------------------------------------------------
def sample_rows(model, data_csv: Path, n: int, seed: int = 0) -> list[dict]:
    """n rows drawn from the generated data, typed like JSON (missing values left out)."""
    with open(data_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    types = model.feature_types
    base = []
    for r in body:
        rec = {}
        for h, v in zip(header, r):
            if v == "" or h not in types:
                continue
            rec[h] = float(v) if types[h] == "numeric" else v
        base.append(rec)
    idx = np.random.default_rng(seed).integers(0, len(base), n)
    return [base[i] for i in idx]




# -- measurements -------------------------------------------------------------------------------








def composition(model) -> str:
    """An ensemble's base models as ``2 XGBoost, 2 GBM, GLM`` (what its MOJO holds)."""
    names = {"xgboost": "XGBoost", "gbm": "GBM", "glm": "GLM", "drf": "DRF", "deeplearning": "DL"}
    counts: dict[str, int] = {}
    for _i, scorer, _m in getattr(model.backend.scorer, "bases", []):
        name = names.get(scorer.info.algo, scorer.info.algo)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} {k}" if n > 1 else k for k, n in counts.items())




_COLD = """import sys, time
t = time.perf_counter()
from converge.mojo import load_mojo
m = load_mojo(sys.argv[1])
load = time.perf_counter() - t
m.predict_records([eval(sys.argv[2])])
rss = next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmRSS:'))
print(load, rss, 'numpy' in sys.modules)
"""


def cold_native(mojo: Path, row: dict) -> dict:
    """Spawn to first answer (s), the load alone (s), RSS after it (kB), whether NumPy came in."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _COLD, str(mojo), repr(row)], check=True, env=env,
                         capture_output=True, text=True)
    total = time.perf_counter() - t
    load, rss, numpy = res.stdout.split()
    return {"total": total, "load": float(load), "rss_kb": int(rss), "numpy": numpy == "True"}


def cold_java(mojo: Path, csv_path: Path, classpath: str) -> dict:
    t = time.perf_counter()
    out = java_run([str(mojo), str(csv_path), "cold", "1", "1"], classpath)
    total = time.perf_counter() - t
    return {"total": total, "load": float(out[1]) / 1e3, "heap": int(out[2]), "rss_kb": int(out[3])}


def cold_pairs(mojo: Path, row: dict, csv_path: Path, classpath: str, runs: int) -> dict:
    """Native and JVM cold starts, alternated so both see the same background load; medians."""
    native, java = [], []
    for _ in range(runs):
        native.append(cold_native(mojo, row))
        java.append(cold_java(mojo, csv_path, classpath))
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    return {"native": med(native, "total"), "native_load": med(native, "load"),
            "native_rss": med(native, "rss_kb"), "numpy": native[0]["numpy"],
            "java": med(java, "total"), "java_load": med(java, "load"),
            "java_heap": med(java, "heap"), "java_rss": med(java, "rss_kb")}


def py_floor(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t




# -- report -------------------------------------------------------------------------------------




def measure_model(label: str, mojo: Path, args, work: Path, classpath: str) -> dict:
    print(f"== {label}", flush=True)
    native = load_mojo(mojo, backend="native")
    rows = sample_rows(native, MODELS / "data.csv", args.rows)
    csv_path = work / f"{mojo.stem}.csv"
    write_csv(rows, native.feature_names, csv_path)
    raw, _ = native._schema.encode_records(rows)
    # same answers before timing anything
    a = native.predict_raw(rows[:500])
    b = GenmodelReference(mojo).raw(rows[:500])  # genmodel's own RowData, no converge code
    assert np.array_equal(a[:, 0], b[:, 0]) and np.allclose(a, b, rtol=0, atol=1e-12)
    r = {"label": label, "mojo": mojo.name, "mb": mojo.stat().st_size / 1e6,
         "holds": composition(native)}
    one = rows[: args.single_calls]
    one_csv = work / f"{mojo.stem}.one.csv"
    write_csv(one, native.feature_names, one_csv)
    rounds: dict[str, list] = {}
    for _ in range(args.rounds):  # native and Java alternated; medians over the rounds
        put = lambda k, v: rounds.setdefault(k, []).append(v)  # noqa: E731
        put("native_records", best_rate(partial(native.predict_records, rows), len(rows), 1))
        put("java_easy", float(java_run([str(mojo), str(csv_path), "easy", str(len(rows)), "3"], classpath)[0]))
        put("native_numpy", best_rate(partial(native.predict_numpy, raw), len(rows), 1))
        put("java_score0", float(java_run([str(mojo), str(csv_path), "score0", str(len(rows)), "3"], classpath)[0]))
        put("single_records", single_records(native, one))
        put("java_single", float(java_run([str(mojo), str(one_csv), "single", str(len(one)), "10"], classpath)[0]))
    for k, vs in rounds.items():
        r[k] = statistics.median(vs)
    r["rounds"] = rounds
    r["single_numpy"] = single_row(partial(native.predict_numpy, raw[:1]), 2000)["p50"]
    r["cold"] = cold_pairs(mojo, rows[0], csv_path, classpath, args.cold_runs)
    print({k: v for k, v in r.items() if k != "label"}, flush=True)
    return r


def measure_sized(name: str, args, work: Path, classpath: str) -> dict:
    mojo = MODELS / f"{name}.zip"
    native = load_mojo(mojo, backend="native")
    rows = sample_rows(native, MODELS / "data.csv", 1)
    csv_path = work / f"{name}.csv"
    write_csv(rows, native.feature_names, csv_path)
    c = cold_pairs(mojo, rows[0], csv_path, classpath, args.size_runs)
    print(name, c, flush=True)
    return {"name": name, "mb": mojo.stat().st_size / 1e6, **c}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--single-calls", type=int, default=5000)
    ap.add_argument("--cold-runs", type=int, default=7)
    ap.add_argument("--size-runs", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not (MODELS / "leader.zip").exists():
        sys.exit(f"benchmark models missing in {MODELS}: run .venv-mage/bin/python "
                 "benchmarks/bench_mojo_models.py first")
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="bench-mojo-"))
    try:
        classpath = java_harness(work)
        # bytecode as an installed package has it (pip compiles on install), so cold processes
        # do not compile the scorer's modules from source
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(SRC / "converge")], check=True)
        results = [measure_model(label, MODELS / f"{name}.zip", args, work, classpath)
                   for label, name in SET]
        sized = [measure_sized(name, args, work, classpath) for name in SIZED]
        info["py_start"] = min(py_floor("pass") for _ in range(5))
        info["py_rss"] = int(subprocess.run(
            [sys.executable, "-c", "print(next(l.split()[1] for l in open('/proc/self/status') "
             "if l.startswith('VmRSS:')))"], capture_output=True, text=True, check=True).stdout)
        info["load_after"] = os.getloadavg()[0]
        text = report(results, sized, info, args, started, time.perf_counter() - t_start)
        print(text)
        if not args.no_write:
            write_section(text, SECTION)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def automl_note(results) -> str:
    """What the H2OAutoML leader's MOJO holds (H2O leaves out base models of zero weight)."""
    holds = next((r["holds"] for r in results if r["mojo"] == "automl.zip"), "")
    note = f"whose MOJO holds the base models its metalearner kept: {holds}."
    if "DRF" not in holds:
        note += (" Its DRF got zero weight, and H2O leaves such models out of the MOJO, so the "
                 "AutoML-shaped leader stays as the ensemble with a DRF of over 100k nodes.")
    return note


def report(results, sized, info, args, started, elapsed) -> str:
    cmd = "python benchmarks/bench_mojo.py" + (f" --rows {args.rows}" if args.rows != 100_000 else "")
    out = [SECTION, "",
           (f"`.venv-mage/bin/python benchmarks/bench_mojo_models.py` (once, trains the model set), "
            f"then `{cmd}` ({started:%Y-%m-%d}, {elapsed:.0f} s wall)."),
           (f"Machine: {info['cpu']}, {info['nproc']} cores, {info['os']}; Python {info['python']}, "
            f"NumPy {info['numpy']}; {info['java']}; h2o-genmodel from the h2o 3.46.0.11 wheel."),
           (f"Load average before/after: {info['load']:.1f} / {info['load_after']:.1f}. The machine is "
            "shared, so wall-clock figures are noisy; ratios come from the same run and the same rows."),
           "",
           ("Models (h2o 3.46.0.11, 30k generated rows: 10 numeric and 3 categorical features with 6, "
            "30 and 200 levels, 3% missing, binary target): the AutoML-shaped leader is a "
            "StackedEnsemble (GLM metalearner on a blending frame) over a GLM, a 50-tree and a "
            "100-tree GBM, a 50-tree DRF of about 170k nodes and two XGBoost models; the H2OAutoML "
            "leader is the StackedEnsemble_AllModels of an `H2OAutoML` run (GLM, GBM, DRF, XGBoost; "
            "6 base models, no cross-validation, blending frame; about 1.5 min on this machine), "
            + automl_note(results)
            + " The GBM and DRF rows are the AutoML-shaped leader's base models exported on their own."),
           "",
           (f"Batch: {args.rows:,} rows. {args.rounds} rounds, each running native and then Java "
            "(so both see the same background load); the medians over the rounds. Java is the "
            "best of 3 JIT-warm passes in a JVM (`benchmarks/mojo_harness.java`: "
            "`EasyPredictModelWrapper` on typed `RowData`, `score0` on encoded `double[]`); native "
            "one pass (`predict_records` on dicts, `predict_numpy` on the encoded matrix)."),
           "",
           ("| model | MOJO MB | native records rows/s | Java EasyPredict rows/s | records vs EasyPredict | "
            "native numpy rows/s | Java score0 rows/s | numpy vs score0 |"),
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        out.append(
            f"| {r['label']} | {r['mb']:.1f} | {fmt(r['native_records'])} | {fmt(r['java_easy'])} | "
            f"{r['native_records'] / r['java_easy']:.2f}x | {fmt(r['native_numpy'])} | "
            f"{fmt(r['java_score0'])} | {r['native_numpy'] / r['java_score0']:.2f}x |")
    out += ["",
            (f"One dict record per call: each of {args.single_calls:,} different rows scored on its "
             "own and timed on its own after a warming pass, median; native `predict_records([row])`, "
             "Java `EasyPredictModelWrapper.predictRaw(row)` (after 10 warming passes); the same rounds, medians. "
             "*Encoded row* is native `predict_numpy` on one row, for scale."),
            "",
            ("| model | native one record us | Java EasyPredict one row us | Java / native | "
             "rounds (native / Java us) | native encoded row us |"),
            "|---|---:|---:|---:|---|---:|"]
    for r in results:
        rr = r["rounds"]
        per = ", ".join(f"{a:.1f} / {b:.1f}" for a, b in zip(rr["single_records"], rr["java_single"]))
        out.append(f"| {r['label']} | {r['single_records']:.1f} | {r['java_single']:.1f} | "
                   f"{r['java_single'] / r['single_records']:.2f}x | {per} | {r['single_numpy']:.1f} |")
    out += ["",
            (f"Cold start: a new process from spawn to its first prediction (interpreter or JVM start, "
             f"imports/class loading, MOJO load, one row); {args.cold_runs} runs each, native and JVM "
             "alternated; medians; the scorer's modules have their bytecode compiled, as after `pip "
             "install`. *Load* is the load call alone, timed inside the process. Memory: "
             "the native process's RSS after its first prediction; the JVM's heap in use after a full "
             "GC at the same point (and its RSS)."),
            "",
            ("| model | native s | fresh JVM s | JVM / native | native load s | JVM load s | "
             "native RSS MB | JVM heap MB | JVM RSS MB | NumPy imported |"),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        c = r["cold"]
        out.append(f"| {r['label']} | {c['native']:.3f} | {c['java']:.3f} | {c['java'] / c['native']:.2f}x | "
                   f"{c['native_load']:.3f} | {c['java_load']:.3f} | {c['native_rss'] / 1024:.0f} | "
                   f"{c['java_heap'] / 2**20:.0f} | {c['java_rss'] / 1024:.0f} | "
                   f"{'yes' if c['numpy'] else 'no'} |")
    out += ["", (f"For scale: a bare `python -c pass` takes {info['py_start']:.3f} s (best of 5) and "
                 f"holds {info['py_rss'] / 1024:.0f} MB RSS."),
            "",
            (f"Load cost against MOJO size (DRFs of 20/200/1000 trees, depth 20; fresh process each, "
             f"{args.size_runs} runs alternated, medians):"),
            "",
            "| MOJO | MB | native load s | JVM load s | native spawn-to-first-prediction s | fresh JVM s | native RSS MB | JVM heap MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for z in sized:
        out.append(f"| {z['name']} | {z['mb']:.1f} | {z['native_load']:.3f} | {z['java_load']:.3f} | "
                   f"{z['native']:.3f} | {z['java']:.3f} | {z['native_rss'] / 1024:.0f} | "
                   f"{z['java_heap'] / 2**20:.0f} |")
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    cold = [r["cold"]["java"] / r["cold"]["native"] for r in results]
    one = [r["java_single"] / r["single_records"] for r in results]
    rec = [r["native_records"] / r["java_easy"] for r in results]
    num = [r["native_numpy"] / r["java_score0"] for r in results]
    each = lambda xs, goal: "; ".join(f"{r['label']} {met(x >= goal)} ({x:.2f}x)"  # noqa: E731
                                      for r, x in zip(results, xs))
    out += ["", "Targets (issue: scorer core against pure Java):",
            f"- cold start >= 2x sooner than a fresh JVM: {each(cold, 2)}.",
            f"- one dict record >= 2x faster than EasyPredict: {each(one, 2)}.",
            f"- batch of {args.rows:,} rows >= 3x pure Java, dict records vs EasyPredict: {each(rec, 3)}.",
            f"- the same, encoded matrix vs score0: {each(num, 3)}.",
            "",
            ("Notes: a tree model keeps the MOJO's own tree bytes (loading is reading the zip plus "
             "one structural check per tree in C); on its first prediction C decodes them into "
             "16-byte node records walked without branches (`_kernels.c`: `tree_flatten`; eight "
             "trees in step for one row, blocks of 64 rows through one tree after another for "
             "batches). XGBoost's trees are turned into the same records and scored in float32. "
             "One dict record is one compiled call (`plan_record`: encode, every model of an "
             "ensemble, link, output dict) for GBM, DRF, XGBoost, GLM and StackedEnsembles of them "
             "(binomial and regression); a batch of dicts is encoded in one C pass. The JVM's heap "
             "after a full GC is its smallest footprint, its RSS what the process really holds."),
            ""]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
