"""KMeans (Clustering): PredictCsv prints the nearest centre's index as ``cluster``."""

from case import Case

CASES = [
    Case(name="kmeans_standardized", estimator="H2OKMeansEstimator",
         params={"k": 3, "standardize": True, "seed": 1}, dataset="mixed", y=None),
    Case(name="kmeans_raw", estimator="H2OKMeansEstimator",
         params={"k": 3, "standardize": False, "init": "PlusPlus", "seed": 2}, dataset="mixed", y=None),
    Case(name="kmeans_estimate_k", estimator="H2OKMeansEstimator",
         params={"k": 6, "estimate_k": True, "standardize": True, "seed": 2}, dataset="mixed", y=None),
]
