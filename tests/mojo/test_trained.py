"""Models trained here on a real H2O 3.46, scored by genmodel and by the native scorer: same answers.

Small synthetic data with a 60-level categorical, integer-like levels, NAs, a time column and an
offset; unseen levels and NAs in the scored rows. Each algorithm/family AutoML produces is covered.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from converge.mojo import load_mojo
from converge.reference import GenmodelReference

pytestmark = pytest.mark.slow

N_TRAIN = 1500
N_SCORE = 250
TOL = 1e-12  # after exp/log, Java's Math.exp and NumPy's may differ in the last ulp


def _frame(rng: np.random.Generator, n: int, unseen: bool):
    import pandas as pd

    many = np.array([f"L{i:02d}" for i in range(60)], dtype=object)
    cat_many = many[rng.integers(0, 60, n)]
    cat_few = np.array(["a", "b", "c", "d"], dtype=object)[rng.integers(0, 4, n)]
    cat_int = np.array(["1", "2", "3"], dtype=object)[rng.integers(0, 3, n)]
    x1 = rng.normal(size=n)
    x2 = rng.gamma(2.0, 2.0, size=n)
    x3 = rng.integers(0, 5, n).astype(float)
    when = pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    for arr, p in ((cat_many, 0.05), (cat_few, 0.05), (x1, 0.05), (x2, 0.03)):
        arr[rng.random(n) < p] = None if arr.dtype == object else np.nan
    if unseen:
        cat_many[rng.random(n) < 0.05] = "ZZ_unseen"
        cat_few[rng.random(n) < 0.05] = "e"
    lvl = np.array([hash(s) % 7 if s is not None else 3 for s in cat_many]) / 7.0
    eta = 0.8 * np.nan_to_num(x1) - 0.3 * np.nan_to_num(x2, nan=4.0) + lvl + (cat_few == "b") * 0.7 + x3 * 0.2
    offset = rng.normal(scale=0.2, size=n)
    p = 1 / (1 + np.exp(-eta))
    df = pd.DataFrame({
        "cat_many": cat_many, "cat_few": cat_few, "cat_int": cat_int,
        "x1": x1, "x2": x2, "x3": x3, "when": when, "off": offset,
        "y_bin": np.where(rng.random(n) < p, "yes", "no"),
        "y_multi": np.array(["A", "B", "C"])[np.clip((eta + rng.normal(size=n)).round().astype(int) % 3, 0, 2)],
        "y_reg": eta * 3 + rng.normal(size=n) + offset,
        "y_count": rng.poisson(np.exp(np.clip(eta, -3, 3) / 2)),
    })
    return df


FEATURES = ["cat_many", "cat_few", "cat_int", "x1", "x2", "x3", "when"]

# name -> (builder name, kwargs, response, exact?)
SPECS = {
    "gbm_binomial": ("GBM", {"ntrees": 15, "max_depth": 5, "seed": 1}, "y_bin", False),
    "gbm_multinomial": ("GBM", {"ntrees": 8, "max_depth": 4, "seed": 1}, "y_multi", False),
    "gbm_gaussian_offset": ("GBM", {"ntrees": 12, "max_depth": 4, "seed": 1, "offset_column": "off"}, "y_reg", True),
    "gbm_poisson": ("GBM", {"ntrees": 10, "max_depth": 3, "seed": 1, "distribution": "poisson"}, "y_count", False),
    "drf_binomial": ("DRF", {"ntrees": 12, "max_depth": 8, "seed": 1}, "y_bin", True),
    "drf_multinomial": ("DRF", {"ntrees": 10, "max_depth": 6, "seed": 1}, "y_multi", True),
    "drf_regression": ("DRF", {"ntrees": 10, "max_depth": 8, "seed": 1}, "y_reg", True),
    "xrt_binomial": ("DRF", {"ntrees": 12, "max_depth": 8, "seed": 1, "histogram_type": "Random"}, "y_bin", True),
    "glm_binomial": ("GLM", {"family": "binomial", "lambda_search": True, "seed": 1}, "y_bin", False),
    "glm_multinomial": ("GLM", {"family": "multinomial", "seed": 1}, "y_multi", False),
    "glm_gaussian_offset": ("GLM", {"family": "gaussian", "offset_column": "off", "seed": 1}, "y_reg", True),
    "glm_poisson": ("GLM", {"family": "poisson", "seed": 1}, "y_count", False),
    "dl_binomial": ("DL", {"hidden": [12, 8], "epochs": 3, "seed": 1, "reproducible": True}, "y_bin", False),
    "dl_multinomial": ("DL", {"hidden": [10], "epochs": 3, "seed": 1, "reproducible": True,
                                  "activation": "TanhWithDropout", "hidden_dropout_ratios": [0.2]}, "y_multi", False),
    "dl_regression": ("DL", {"hidden": [9, 9], "epochs": 3, "seed": 1, "reproducible": True,
                                 "activation": "RectifierWithDropout"}, "y_reg", True),
    "xgb_binomial": ("XGB", {"ntrees": 10, "max_depth": 4, "seed": 1}, "y_bin", False),
    "xgb_multinomial": ("XGB", {"ntrees": 6, "max_depth": 3, "seed": 1}, "y_multi", False),
    "xgb_regression": ("XGB", {"ntrees": 10, "max_depth": 4, "seed": 1}, "y_reg", True),
    "xgb_gblinear": ("XGB", {"booster": "gblinear", "ntrees": 5, "seed": 1}, "y_reg", True),
    "xgb_gblinear_binomial": ("XGB", {"booster": "gblinear", "ntrees": 5, "seed": 1}, "y_bin", False),
    "xgb_gblinear_multinomial": ("XGB", {"booster": "gblinear", "ntrees": 5, "seed": 1}, "y_multi", False),
    "se_logit_multinomial": ("SE", {"metalearner_transform": "Logit"}, "y_multi", False),
    # the benchmark leader's shape in small: GLM, GBM, a deep DRF and XGBoost, blended
    "se_blended_binomial": ("SE_BLEND", {"metalearner_algorithm": "glm", "seed": 1}, "y_bin", False),
    "automl_se_binomial": ("AUTOML", {"max_models": 3, "seed": 1, "nfolds": 3,
                                          "include_algos": ["GBM", "GLM", "DRF", "DeepLearning", "StackedEnsemble"]},
                           "y_bin", False),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return _frame(rng, N_TRAIN, unseen=False), _frame(rng, N_SCORE, unseen=True)


@pytest.fixture(scope="module")
def trained(h2o_conn, data, tmp_path_factory):
    """Train lazily, once per spec; returns name -> MOJO path (or a skip reason)."""
    h2o = h2o_conn
    train_df, _ = data
    frame = h2o.H2OFrame(train_df, column_types={
        "cat_many": "enum", "cat_few": "enum", "cat_int": "enum", "y_bin": "enum",
        "y_multi": "enum", "when": "time"})
    out_dir = tmp_path_factory.mktemp("mojos")
    cache: dict[str, object] = {}

    def get(name: str):
        if name in cache:
            return cache[name]
        kind, kw, y, _ = SPECS[name]
        from h2o.estimators import (
            H2ODeepLearningEstimator,
            H2OGeneralizedLinearEstimator,
            H2OGradientBoostingEstimator,
            H2ORandomForestEstimator,
            H2OXGBoostEstimator,
        )

        if kind == "XGB" and not H2OXGBoostEstimator.available():
            cache[name] = "XGBoost is not available in this H2O build on this machine"
            return cache[name]
        if kind == "SE":
            from h2o.estimators import H2OStackedEnsembleEstimator

            bases = []
            for j, est_cls in enumerate((H2OGradientBoostingEstimator, H2ORandomForestEstimator,
                                         H2OGeneralizedLinearEstimator)):
                extra = {"ntrees": 8, "max_depth": 4} if j < 2 else {}
                b = est_cls(model_id=f"m_{name}_base{j}", nfolds=3, seed=1,
                            keep_cross_validation_predictions=True,
                            fold_assignment="Modulo", **extra)
                b.train(x=FEATURES, y=y, training_frame=frame)
                bases.append(b)
            model = H2OStackedEnsembleEstimator(model_id=f"m_{name}", base_models=bases, **kw)
            model.train(x=FEATURES, y=y, training_frame=frame)
        elif kind == "SE_BLEND":
            from h2o.estimators import H2OStackedEnsembleEstimator

            train, blend = frame.split_frame([0.75], seed=1)
            bases = [H2OGeneralizedLinearEstimator(model_id=f"m_{name}_glm", seed=1),
                     H2OGradientBoostingEstimator(model_id=f"m_{name}_gbm", ntrees=10, max_depth=4, seed=1),
                     H2ORandomForestEstimator(model_id=f"m_{name}_drf", ntrees=6, max_depth=25,
                                              min_rows=1, seed=1)]
            if H2OXGBoostEstimator.available():
                bases.append(H2OXGBoostEstimator(model_id=f"m_{name}_xgb", ntrees=8, max_depth=5, seed=1))
            for b in bases:
                b.train(x=FEATURES, y=y, training_frame=train)
            model = H2OStackedEnsembleEstimator(model_id=f"m_{name}", base_models=bases,
                                                blending_frame=blend, **kw)
            model.train(x=FEATURES, y=y, training_frame=train)
        elif kind == "AUTOML":
            from h2o.automl import H2OAutoML

            aml = H2OAutoML(project_name=f"p_{name}", **kw)
            aml.train(x=FEATURES, y=y, training_frame=frame)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ids = aml.leaderboard["model_id"].as_data_frame()["model_id"]
            ses = [m for m in ids if m.startswith("StackedEnsemble")]
            model = h2o.get_model(ses[0])
        else:
            est = {"GBM": H2OGradientBoostingEstimator, "DRF": H2ORandomForestEstimator,
                   "GLM": H2OGeneralizedLinearEstimator, "DL": H2ODeepLearningEstimator,
                   "XGB": H2OXGBoostEstimator}[kind](model_id=f"m_{name}", **kw)
            est.train(x=FEATURES, y=y, training_frame=frame)
            model = est
        folder = out_dir / name  # one folder per spec: MOJO file names come from model ids
        folder.mkdir()
        cache[name] = model.download_mojo(path=str(folder))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def genmodel_ok():
    from converge.mojo.backends.genmodel import _jvm
    from converge.mojo.errors import BackendUnavailableError

    try:
        _jvm()
    except BackendUnavailableError as e:
        pytest.skip(f"genmodel backend unavailable: {e}")


def _records(df):
    recs = []
    for row in df.to_dict(orient="records"):
        recs.append({k: (None if (isinstance(v, float) and np.isnan(v)) else v) for k, v in row.items()})
    return recs


def _reference_raw(path, recs):
    """genmodel run directly; time columns as H2O stores them (epoch milliseconds)."""
    import pandas as pd

    as_h2o = [{k: float(v.value // 1_000_000) if isinstance(v, pd.Timestamp) else v for k, v in r.items()}
              for r in recs]
    return GenmodelReference(path).raw(as_h2o)


@pytest.mark.parametrize("name", list(SPECS))
def test_trained_model_native_equals_genmodel(name, trained, data, genmodel_ok):
    path = trained(name)
    if isinstance(path, str) and not path.endswith(".zip"):
        pytest.skip(path)
    _, score_df = data
    native = load_mojo(path, backend="native")
    assert native.backend.name == "native"
    recs = _records(score_df)
    a = native.predict_raw(recs)
    b = _reference_raw(path, recs)
    assert a.shape == b.shape == (N_SCORE, len(native.output_names))
    exact = SPECS[name][3]
    if native.classes is not None:
        np.testing.assert_array_equal(a[:, 0], b[:, 0], err_msg=f"{name}: labels differ")
        probs_a, probs_b = a[:, 1:], b[:, 1:]
    else:
        probs_a, probs_b = a, b
    if exact:
        np.testing.assert_array_equal(probs_a, probs_b, err_msg=f"{name}: not bit-identical")
    else:
        np.testing.assert_allclose(probs_a, probs_b, rtol=0, atol=TOL, err_msg=name)
    # one row at a time, through the plain-Python path where the model has one
    if native.backend.scorer.rows_without_numpy():
        single = np.array([native.backend.preds_row(r) for r in recs])
        if native.classes is not None:
            np.testing.assert_array_equal(single[:, 0], b[:, 0], err_msg=f"{name}: row labels")
            single = single[:, 1:]
        if exact:
            np.testing.assert_array_equal(single, probs_b, err_msg=f"{name}: rows not bit-identical")
        else:
            np.testing.assert_allclose(single, probs_b, rtol=0, atol=TOL, err_msg=f"{name}: rows")
    else:
        assert name.startswith("xgb"), f"{name} should score one row without NumPy"
    # the DataFrame path (datetime64 column -> epoch ms) agrees with the records path
    frame_out = native.predict(score_df)
    assert list(frame_out.columns) == native.output_names
    np.testing.assert_array_equal(native.predict_raw(score_df), a)
    if native.offset_column:
        assert native.offset_column == "off"
        shifted = native.predict_raw(recs, offset=np.zeros(N_SCORE))
        assert not np.array_equal(shifted, a)


def test_trained_mojos_cover_the_current_writer_versions(trained, genmodel_ok):
    """H2O 3.46 writes GBM/DRF 1.40, GLM 1.00, DL 1.10, XGBoost 1.10, SE 1.01 (with Logit)."""
    want = {"gbm_binomial": 1.4, "drf_binomial": 1.4, "glm_binomial": 1.0, "dl_binomial": 1.1,
            "automl_se_binomial": 1.01, "xgb_binomial": 1.1}
    for name, version in want.items():
        path = trained(name)
        if not str(path).endswith(".zip"):
            continue  # XGBoost unavailable on this machine
        m = load_mojo(path, backend="native")
        assert m.mojo_version == version, name
    se = load_mojo(trained("automl_se_binomial"), backend="native")
    assert se.info.get("metalearner_transform", "NONE") in ("NONE", "Logit")
    bases = se.backend.scorer.bases
    assert len(bases) >= 1 and se.backend.scorer.meta.info.algo == "glm"
    explicit = load_mojo(trained("se_logit_multinomial"), backend="native").backend.scorer
    assert explicit.logit and len(explicit.bases) == 3


def test_time_columns_take_datetimes_or_epoch_millis(trained, data):
    m = load_mojo(trained("gbm_gaussian_offset"), backend="native")
    _, score_df = data
    row = _records(score_df.head(1))[0]
    when = row["when"]
    as_ms = dict(row, when=float(when.value // 1_000_000))
    as_py = dict(row, when=when.to_pydatetime())
    as_str = dict(row, when=str(int(when.value // 1_000_000)))
    assert m.predict_raw([row]).tolist() == m.predict_raw([as_ms]).tolist()
    assert m.predict_raw([as_py]).tolist() == m.predict_raw([as_ms]).tolist()
    assert m.predict_raw([as_str]).tolist() == m.predict_raw([as_ms]).tolist()
