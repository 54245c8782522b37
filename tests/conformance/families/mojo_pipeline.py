"""A MOJO pipeline (genmodel's own ``BuildPipeline`` tool): a GBM whose inputs include a KMeans
cluster and a GLM's probability, each computed by its sub-model from the row."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from case import Case

from converge.mojo.backends.genmodel import find_h2o_jar

_FEATURES = ["x1", "x2", "c1", "x3", "c2"]


class _Pipeline:
    """Quacks like an H2O model for ``generate.py``: its MOJO is built from the three."""

    def __init__(self, main, subs: dict) -> None:
        self.main, self.subs = main, subs
        self._model_json = main._model_json

    def download_mojo(self, path: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            inputs = []
            for alias, model in {"main": self.main, **self.subs}.items():
                target = Path(tmp) / f"{alias}.zip"
                shutil.copy(model.download_mojo(path=tmp), target)
                inputs.append(str(target))
            out = Path(path) / "pipeline.zip"
            subprocess.run(["java", "-cp", str(find_h2o_jar()), "hex.genmodel.tools.BuildPipeline",
                            "--mapping", "CLUSTER=kmeans:0", "P_YES=glm:2",
                            "--output", str(out), "--input", *inputs], check=True)
        return str(out)


def _train(h2o, frame):
    from h2o.estimators import (H2OGeneralizedLinearEstimator, H2OGradientBoostingEstimator,
                                H2OKMeansEstimator)

    kmeans = H2OKMeansEstimator(k=3, seed=1, standardize=True)
    kmeans.train(x=["x1", "x2", "x3"], training_frame=frame)
    glm = H2OGeneralizedLinearEstimator(family="binomial", seed=1)
    glm.train(x=_FEATURES, y="y_binomial", training_frame=frame)
    cluster = kmeans.predict(frame)["predict"].set_names(["CLUSTER"])
    p_yes = glm.predict(frame)["yes"].set_names(["P_YES"])
    extended = frame.cbind(cluster).cbind(p_yes)
    main = H2OGradientBoostingEstimator(ntrees=8, max_depth=3, seed=1)
    main.train(x=[*_FEATURES, "CLUSTER", "P_YES"], y="y_multinomial", training_frame=extended)
    return _Pipeline(main, {"kmeans": kmeans, "glm": glm})


CASES = [Case(name="mojo_pipeline_gbm_kmeans_glm", estimator="MojoPipeline", dataset="mixed",
              y="y_multinomial", train=_train)]
