"""Uplift DRF (BinomialUplift): PredictCsv prints uplift_predict, p_y1_with_treatment and
p_y1_without_treatment."""

from case import Case

CASES = [
    Case(name="uplift_drf_kl", estimator="H2OUpliftRandomForestEstimator",
         params={"treatment_column": "treatment", "uplift_metric": "KL", "ntrees": 5,
                 "max_depth": 4, "seed": 1}, dataset="uplift", y="y_binomial"),
    Case(name="uplift_drf_euclidean", estimator="H2OUpliftRandomForestEstimator",
         params={"treatment_column": "treatment", "uplift_metric": "euclidean", "ntrees": 4,
                 "max_depth": 3, "seed": 2}, dataset="uplift", y="y_binomial"),
]
