"""Isotonic regression: one numeric input, the fitted steps interpolated linearly; genmodel clips
inputs to the training range and answers missing for a missing input."""

from case import Case

CASES = [
    Case(name="isotonic_regression", estimator="H2OIsotonicRegressionEstimator",
         params={}, dataset="mixed", y="y_regression", x=["x2"]),
    Case(name="isotonic_regression_na_out_of_bounds", estimator="H2OIsotonicRegressionEstimator",
         params={"out_of_bounds": "NA"}, dataset="mixed", y="y_regression", x=["x3"]),
]
