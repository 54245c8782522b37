"""Binomial GBM and DRF trained with ``calibrate_model``: PredictCsv ``--predictCalibrated``
prints the calibrated probabilities (``cal_<class>``, Platt scaling or isotonic calibration)
beside the uncalibrated answer."""

from case import Case

_FEATURES = ["x1", "x2", "c1", "x3", "c2"]


def _calibrated(estimator: str, method: str, **params):
    def train(h2o, frame):
        from h2o import estimators

        model = getattr(estimators, estimator)(
            seed=1, calibrate_model=True, calibration_frame=frame, calibration_method=method,
            **params)
        model.train(x=_FEATURES, y="y_binomial", training_frame=frame)
        return model
    return train


CASES = [
    Case(name="gbm_calibrated_platt", estimator="H2OGradientBoostingEstimator",
         params={"ntrees": 8, "max_depth": 4, "calibration_method": "PlattScaling"},
         y="y_binomial", predict_csv_args=("--predictCalibrated",),
         train=_calibrated("H2OGradientBoostingEstimator", "PlattScaling", ntrees=8, max_depth=4)),
    Case(name="drf_calibrated_isotonic", estimator="H2ORandomForestEstimator",
         params={"ntrees": 6, "max_depth": 6, "calibration_method": "IsotonicRegression"},
         y="y_binomial", predict_csv_args=("--predictCalibrated",),
         train=_calibrated("H2ORandomForestEstimator", "IsotonicRegression", ntrees=6, max_depth=6)),
]
