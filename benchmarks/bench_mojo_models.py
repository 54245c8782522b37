"""The benchmark model set for bench_mojo.py, trained with h2o 3.46.0.11 on generated data.

Models (cached under ``benchmarks/.work/models``, rebuilt only when missing):

- ``leader.zip``: a StackedEnsemble over a GLM, two GBMs (one of 50 trees), a deep DRF (>= 100k
  nodes) and two XGBoost models, with a GLM metalearner trained on a blending frame: the shape of
  an AutoML leader with every base model kept. (AutoML's own leader, ``automl.zip`` below, drops
  the models its metalearner gives zero weight, the DRF among them on this data.)
- ``automl.zip``: the StackedEnsemble_AllModels of an ``H2OAutoML`` run on the same data (GLM,
  GBM, DRF, XGBoost and StackedEnsemble; six base models; no cross-validation, the ensembles
  trained on a blending frame, which keeps the run to a minute or two on 2 cores). Its MOJO holds
  the base models the metalearner kept (H2O leaves out those with zero weight).
- ``gbm50.zip``, ``drf.zip``: the ensemble's GBM and DRF base models, exported on their own.
- ``drf_1mb.zip``, ``drf_10mb.zip``, ``drf_50mb.zip``: DRFs sized for load cost against MOJO size.
- ``data.csv``: the rows scored by the benchmark (features only, with NAs and categoricals).

Usage (training environment): .venv-mage/bin/python benchmarks/bench_mojo_models.py [--force]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np
from converge.checkout import REPO

WORK = REPO / "benchmarks" / ".work" / "models"
N_ROWS = 30_000
CATS = {"c_small": 6, "c_mid": 30, "c_big": 200}
NUMS = [f"x{i}" for i in range(10)]
#: DRFs for load cost vs size: (name, ntrees, max_depth)
SIZED = [("drf_1mb", 20, 20), ("drf_10mb", 200, 20), ("drf_50mb", 1000, 20)]


def make_data(n: int, seed: int = 7) -> tuple[list[str], list[list]]:
    """Numeric and categorical features with missing values; a binary target with some noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NUMS)))
    cats = {c: rng.integers(0, k, n) for c, k in CATS.items()}
    effect = {c: rng.normal(size=k) for c, k in CATS.items()}
    z = (X[:, 0] * 1.5 - X[:, 1] + 0.7 * X[:, 2] * X[:, 3] + np.sin(3 * X[:, 4])
         + sum(effect[c][cats[c]] for c in CATS) + rng.normal(scale=0.8, size=n))
    y = (z > np.median(z)).astype(int)
    header = [*NUMS, *CATS, "y"]
    rows = []
    miss = rng.random((n, len(header) - 1)) < 0.03
    for i in range(n):
        r: list = [float(v) for v in X[i]] + [f"L{cats[c][i]}" for c in CATS]
        r = ["" if miss[i, j] else v for j, v in enumerate(r)]
        rows.append([*r, "yes" if y[i] else "no"])
    return header, rows


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def export(h2o, model, name: str) -> Path:
    tmp = Path(tempfile.mkdtemp())
    path = Path(model.download_mojo(str(tmp)))
    out = WORK / f"{name}.zip"
    shutil.move(str(path), out)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{name}: {out.stat().st_size / 1e6:.1f} MB", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    wanted = ["leader", "gbm50", "drf", "automl", *(s[0] for s in SIZED)]
    missing = [n for n in wanted if args.force or not (WORK / f"{n}.zip").exists()]
    if not missing:
        print("models present:", ", ".join(wanted))
        return
    import h2o
    from h2o.automl import H2OAutoML
    from h2o.estimators import (H2OGeneralizedLinearEstimator, H2OGradientBoostingEstimator,
                                H2ORandomForestEstimator, H2OStackedEnsembleEstimator,
                                H2OXGBoostEstimator)

    from converge.stack.h2o import H2O

    header, rows = make_data(N_ROWS)
    data = WORK / "train.csv"
    write_csv(data, header, rows)
    write_csv(WORK / "data.csv", header[:-1], [r[:-1] for r in rows])
    server = H2O(WORK / "h2o-state", heap="3g").start()
    try:
        h2o.connect(url=server.url, verbose=False)
        frame = h2o.upload_file(str(data), col_types={c: "enum" for c in [*CATS, "y"]})
        train, blend = frame.split_frame([0.8], seed=1)
        x = [*NUMS, *CATS]
        common = {"seed": 1}
        if "automl" in missing:
            aml = H2OAutoML(max_models=6, include_algos=["GLM", "GBM", "DRF", "XGBoost", "StackedEnsemble"],
                            nfolds=0, max_runtime_secs=1200, **common)
            aml.train(x=x, y="y", training_frame=train, blending_frame=blend)
            ids = [r[0] for r in h2o.as_list(aml.leaderboard["model_id"], use_pandas=False, header=False)]
            print("leaderboard:", ids, flush=True)
            export(h2o, h2o.get_model(next(i for i in ids if i.startswith("StackedEnsemble_AllModels"))),
                   "automl")
        if {"leader", "gbm50", "drf"} & set(missing):
            glm = H2OGeneralizedLinearEstimator(family="binomial", **common)
            gbm = H2OGradientBoostingEstimator(ntrees=50, max_depth=6, **common)
            drf = H2ORandomForestEstimator(ntrees=50, max_depth=30, min_rows=1, **common)
            xgb = H2OXGBoostEstimator(ntrees=50, max_depth=6, **common)
            gbm2 = H2OGradientBoostingEstimator(ntrees=100, max_depth=8, sample_rate=0.8, **common)
            xgb2 = H2OXGBoostEstimator(ntrees=100, max_depth=10, sample_rate=0.8, **common)
            bases = [glm, gbm, gbm2, drf, xgb, xgb2]
            for m in bases:
                m.train(x=x, y="y", training_frame=train)
            nodes = drf._model_json["output"]["model_summary"]
            print(nodes.as_data_frame() if hasattr(nodes, "as_data_frame") else nodes, flush=True)
            se = H2OStackedEnsembleEstimator(base_models=bases, blending_frame=blend,
                                             metalearner_algorithm="glm", **common)
            se.train(x=x, y="y", training_frame=train)
            export(h2o, se, "leader")
            export(h2o, gbm, "gbm50")
            export(h2o, drf, "drf")
        for name, ntrees, depth in SIZED:
            if name in missing:
                m = H2ORandomForestEstimator(ntrees=ntrees, max_depth=depth, min_rows=1, **common)
                m.train(x=x, y="y", training_frame=frame)
                export(h2o, m, name)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
