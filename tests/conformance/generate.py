"""Build the conformance corpus: train every case with h2o, export its MOJO, and record genmodel's
own answers for the case's scoring input (``PredictCsv``, never converge's scorer).

Usage (training environment): .venv-mage/bin/python tests/conformance/generate.py [--only NAME ...]
Writes ``tests/data/conformance/<name>/{model.zip, input.csv, expected.csv, case.json}``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import h2o
from h2o import estimators

import families
from case import Case
from data import DATASETS

from converge.mojo.backends.genmodel import find_h2o_jar
from converge.predict_csv import run_predict_csv

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "data" / "conformance"
#: categories PredictCsv cannot print: genmodel's own API answers them (GenmodelApi.java)
API_CATEGORIES = ("BinomialUplift", "TargetEncoder", "WordEmbedding")


def all_cases() -> list[Case]:
    cases = []
    for module in sorted(m.name for m in pkgutil.iter_modules(families.__path__)):
        cases += importlib.import_module(f"families.{module}").CASES
    names = [c.name for c in cases]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        sys.exit(f"case names used twice: {sorted(duplicated)}")
    return cases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(case: Case, frames: dict):
    data = DATASETS[case.dataset]()
    if case.dataset not in frames:
        frames[case.dataset] = h2o.H2OFrame(data.train, column_types=data.column_types)
    frame = frames[case.dataset]
    if case.train is not None:
        return data, case.train(h2o, frame)
    model = getattr(estimators, case.estimator)(**case.params)
    model.train(x=case.x or data.features, y=case.y, training_frame=frame)
    return data, model


def genmodel_api(out: Path, mode: str = "") -> None:
    """``expected.csv`` (or, ``mode="contributions"``, ``expected_contributions.csv``) from
    genmodel's EasyPredictModelWrapper, formatted as PredictCsv would."""
    jar = find_h2o_jar()
    with tempfile.TemporaryDirectory() as classes:
        subprocess.run(["javac", "-d", classes, "-cp", str(jar), str(HERE / "GenmodelApi.java")],
                       check=True)
        target = out / (f"expected_{mode}.csv" if mode else "expected.csv")
        subprocess.run(["java", "-Xmx512m", "-cp", f"{classes}:{jar}", "GenmodelApi",
                        str(out / "model.zip"), str(out / "input.csv"), str(target),
                        *([mode] if mode else [])],
                       check=True, stdout=subprocess.DEVNULL)


def _gam_sources(case: Case) -> list[str]:
    """A GAM's spline columns, read from the scoring input beside the predictors."""
    sources = []
    for spec in case.params.get("gam_columns", []):
        sources += [spec] if isinstance(spec, str) else spec
    return list(dict.fromkeys(sources))


def build(case: Case, frames: dict) -> None:
    out = OUT / case.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    meta = {"name": case.name, "algorithm": case.estimator, "options": case.params,
            "dataset": case.dataset, "h2o_version": h2o.__version__,
            "predict_csv_args": list(case.predict_csv_args)}
    data, model = train(case, frames)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = model.download_mojo(path=tmp)
        except Exception as exc:  # noqa: BLE001 - H2O's refusal is the record
            meta["refused"] = str(getattr(exc, "args", [exc])[0]).strip()
            (out / "case.json").write_text(json.dumps(meta, indent=1) + "\n")
            print(f"{case.name}: H2O refuses to export: {meta['refused']}")
            return
        shutil.copy(path, out / "model.zip")
    columns = list(case.x or data.features)
    columns += [c for c in _gam_sources(case) if c not in columns]
    if len(columns) == 1:  # a second column keeps an empty cell unquoted: PredictCsv reads it as NA
        columns += [c for c in data.features if c not in columns][:1]
    data.score[columns].to_csv(out / "input.csv", index=False)
    if model._model_json["output"]["model_category"] in API_CATEGORIES:
        meta["expected_by"] = ("genmodel API (GenmodelApi.java): PredictCsv cannot print this "
                               "category")
        genmodel_api(out)
    else:
        try:
            run_predict_csv(out / "model.zip", out / "input.csv", out / "expected.csv",
                            *case.predict_csv_args)
        except RuntimeError as exc:  # genmodel's failure is the record: converge must refuse it
            meta["genmodel_fails"] = str(exc)
            (out / "case.json").write_text(json.dumps(meta, indent=1) + "\n")
            print(f"{case.name}: genmodel cannot score it: {exc}")
            return
    if case.leaf_assignment:
        run_predict_csv(out / "model.zip", out / "input.csv", out / "expected_leaves.csv",
                        "--leafNodeAssignment")
        genmodel_api(out, "leaf_ids")
    if case.contributions:
        genmodel_api(out, "contributions")
        meta["contributions_by"] = "genmodel API (GenmodelApi.java contributions)"
    (out / "case.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{case.name}: {(out / 'model.zip').stat().st_size // 1024} kB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="case names (default: every case)")
    args = ap.parse_args()
    cases = [c for c in all_cases() if not args.only or c.name in args.only]
    missing = set(args.only or ()) - {c.name for c in cases}
    if missing:
        sys.exit(f"no such case: {sorted(missing)}")
    h2o.init(ip="127.0.0.1", port=free_port(), nthreads=1, max_mem_size="1G", verbose=False)
    h2o.no_progress()
    try:
        frames: dict = {}
        for case in cases:
            build(case, frames)
    finally:
        h2o.cluster().shutdown()


if __name__ == "__main__":
    main()
