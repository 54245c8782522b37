"""Models trained on encoded categoricals (``categorical_encoding``). GBM, DRF and Deep Learning
MOJOs hold the encoded columns, and genmodel encodes each original column before scoring;
``enum`` and ``sort_by_response`` need no encoding at scoring time. XGBoost, KMeans and Extended
Isolation Forest MOJOs record no encoding: genmodel matches the input to the encoded columns by
name, as it does for any model."""

from case import Case

_GBM = {"ntrees": 6, "max_depth": 4, "seed": 1}
_DRF = {"ntrees": 5, "max_depth": 6, "seed": 1}
_DL = {"hidden": [4], "epochs": 3, "reproducible": True, "seed": 1}
_Y = ("y_binomial", "y_multinomial", "y_regression")


def _name(algo: str, encoding: str, y: str | None) -> str:
    return f"{algo}_{encoding.lower()}" + (f"_{y.removeprefix('y_')}" if y else "")


def _dataset(encoding: str) -> str:
    """``enum_limited`` changes a model only with a column of more than 10 levels."""
    return "many_levels" if encoding == "enum_limited" else "mixed"


_TREES = [
    Case(name=_name(algo, encoding, y), estimator=estimator,
         params={**params, "categorical_encoding": encoding}, dataset=_dataset(encoding), y=y)
    for algo, estimator, params in (("gbm", "H2OGradientBoostingEstimator", _GBM),
                                    ("drf", "H2ORandomForestEstimator", _DRF))
    for encoding in ("one_hot_explicit", "binary", "label_encoder", "eigen", "enum_limited",
                     "sort_by_response", "enum")
    for y in _Y
    if algo == "gbm" or y != "y_multinomial"
]

_DEEPLEARNING = [
    Case(name=_name("deeplearning", encoding, y), estimator="H2ODeepLearningEstimator",
         params={**_DL, "categorical_encoding": encoding}, dataset="mixed", y=y)
    for encoding in ("binary", "label_encoder", "eigen")
    for y in _Y
] + [
    Case(name=_name("deeplearning", encoding, "y_binomial"), estimator="H2ODeepLearningEstimator",
         params={**_DL, "categorical_encoding": encoding}, dataset="mixed", y="y_binomial")
    for encoding in ("sort_by_response", "one_hot_internal")
] + [
    Case(name=_name("deeplearning_autoencoder", encoding, None),
         estimator="H2ODeepLearningEstimator",
         params={**_DL, "autoencoder": True, "categorical_encoding": encoding}, dataset="mixed")
    for encoding in ("binary", "label_encoder", "eigen")
]

#: encodings the MOJO does not record: XGBoost's own one-hot (``one_hot_internal``, and
#: ``sort_by_response``), and encoded columns genmodel looks up by name (``c1.a``, ``c1:0``,
#: ``c1.Eigen``, ``enum_limited``'s ``c3.top_10_levels``), the original column being ignored
_UNRECORDED = [
    Case(name=_name("xgboost", encoding, "y_binomial"), estimator="H2OXGBoostEstimator",
         params={"ntrees": 4, "max_depth": 3, "seed": 1, "categorical_encoding": encoding},
         dataset=_dataset(encoding), y="y_binomial")
    for encoding in ("one_hot_internal", "one_hot_explicit", "binary", "enum_limited",
                     "sort_by_response")
] + [
    Case(name=_name("kmeans", encoding, None), estimator="H2OKMeansEstimator",
         params={"k": 3, "seed": 1, "categorical_encoding": encoding}, dataset="mixed")
    for encoding in ("one_hot_explicit", "binary", "eigen")
] + [
    Case(name=_name("extended_isolation_forest", encoding, None),
         estimator="H2OExtendedIsolationForestEstimator",
         params={"ntrees": 5, "sample_size": 64, "seed": 1, "categorical_encoding": encoding},
         dataset="mixed")
    for encoding in ("one_hot_explicit", "binary")
]

_ISOLATION_FOREST = [
    Case(name="isolation_forest_enum", estimator="H2OIsolationForestEstimator",
         params={"ntrees": 5, "max_depth": 6, "seed": 1, "categorical_encoding": "enum"},
         dataset="mixed"),
]

#: the offset column follows the features in ``_orig_names``: genmodel reads it as the offset
_OFFSET = [
    Case(name="gbm_eigen_offset", estimator="H2OGradientBoostingEstimator",
         params={**_GBM, "categorical_encoding": "eigen", "distribution": "poisson",
                 "offset_column": "log_exposure"}, dataset="survival_offset", y="event"),
]

CASES = _TREES + _DEEPLEARNING + _UNRECORDED + _ISOLATION_FOREST + _OFFSET
