"""IsolationForest and ExtendedIsolationForest (AnomalyDetection): PredictCsv prints the
normalised score and the mean path length, and with ``contamination`` a 0/1 flag first."""

from case import Case

CASES = [
    Case(name="isolation_forest", estimator="H2OIsolationForestEstimator",
         params={"ntrees": 7, "max_depth": 6, "sample_size": 64, "seed": 1},
         dataset="mixed", y=None),
    Case(name="isolation_forest_contamination", estimator="H2OIsolationForestEstimator",
         params={"ntrees": 5, "max_depth": 0, "sample_rate": 0.3, "mtries": 2, "contamination": 0.1,
                 "seed": 2},
         dataset="mixed", y=None),
    Case(name="extended_isolation_forest", estimator="H2OExtendedIsolationForestEstimator",
         params={"ntrees": 7, "sample_size": 64, "extension_level": 2, "seed": 1},
         dataset="mixed", y=None),
    Case(name="extended_isolation_forest_axis_parallel", estimator="H2OExtendedIsolationForestEstimator",
         params={"ntrees": 5, "sample_size": 100, "extension_level": 0, "seed": 2},
         dataset="mixed", y=None),
]
