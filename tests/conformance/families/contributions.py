"""SHAP contributions (genmodel's ``predictContributions``) and leaf node assignments (PredictCsv's
``--leafNodeAssignment``) of the tree models that have them:
GBM (regression, binomial), DRF and XRT (regression, binomial), with categoricals, missing
values and unseen levels in the rows."""

from case import Case

CASES = [
    Case(name="shap_gbm_regression", estimator="H2OGradientBoostingEstimator",
         params={"ntrees": 8, "max_depth": 4, "seed": 1}, y="y_regression", contributions=True, leaf_assignment=True),
    Case(name="shap_gbm_binomial", estimator="H2OGradientBoostingEstimator",
         params={"ntrees": 10, "max_depth": 5, "seed": 1}, y="y_binomial", contributions=True, leaf_assignment=True),
    Case(name="shap_gbm_bernoulli_deep", estimator="H2OGradientBoostingEstimator",
         params={"ntrees": 4, "max_depth": 9, "min_rows": 2, "seed": 3}, y="y_binomial",
         contributions=True, leaf_assignment=True),
    Case(name="shap_drf_regression", estimator="H2ORandomForestEstimator",
         params={"ntrees": 6, "max_depth": 8, "seed": 1}, y="y_regression", contributions=True, leaf_assignment=True),
    Case(name="shap_drf_binomial", estimator="H2ORandomForestEstimator",
         params={"ntrees": 6, "max_depth": 8, "seed": 1}, y="y_binomial", contributions=True, leaf_assignment=True),
    Case(name="shap_xrt_binomial", estimator="H2ORandomForestEstimator",
         params={"ntrees": 5, "max_depth": 6, "histogram_type": "Random", "seed": 2},
         y="y_binomial", contributions=True, leaf_assignment=True),
]

CASES += [
    Case(name="leaves_gbm_multinomial", estimator="H2OGradientBoostingEstimator",
         params={"ntrees": 3, "max_depth": 4, "seed": 1}, y="y_multinomial", leaf_assignment=True),
]

CASES += [
    Case(name="shap_xgboost_binomial", estimator="H2OXGBoostEstimator",
         params={"ntrees": 8, "max_depth": 4, "seed": 1}, y="y_binomial", contributions=True),
    Case(name="shap_xgboost_regression", estimator="H2OXGBoostEstimator",
         params={"ntrees": 6, "max_depth": 5, "seed": 1}, y="y_regression", contributions=True),
    Case(name="shap_xgboost_dart", estimator="H2OXGBoostEstimator",
         params={"ntrees": 5, "max_depth": 3, "booster": "dart", "seed": 1}, y="y_binomial",
         contributions=True),
]

# trained on encoded categoricals: genmodel explains the encoded columns it scores
CASES += [
    Case(name=f"shap_gbm_{encoding}_binomial", estimator="H2OGradientBoostingEstimator",
         params={"ntrees": 6, "max_depth": 4, "seed": 1, "categorical_encoding": encoding},
         y="y_binomial", contributions=True, leaf_assignment=True)
    for encoding in ("one_hot_explicit", "binary", "eigen")
]
