"""Tree models trained on encoded categoricals (``categorical_encoding``): the MOJO's columns are
the encoded ones, and genmodel encodes each original column before scoring."""

from case import Case

_GBM = {"ntrees": 6, "max_depth": 4, "seed": 1}
_DRF = {"ntrees": 5, "max_depth": 6, "seed": 1}

CASES = [
    Case(name=f"{algo}_{encoding.lower()}_{y.removeprefix('y_')}", estimator=estimator,
         params={**params, "categorical_encoding": encoding}, dataset="mixed", y=y)
    for algo, estimator, params in (("gbm", "H2OGradientBoostingEstimator", _GBM),
                                    ("drf", "H2ORandomForestEstimator", _DRF))
    for encoding in ("one_hot_explicit", "binary", "label_encoder")
    for y in ("y_binomial", "y_multinomial", "y_regression")
    if algo == "gbm" or y != "y_multinomial"
]
