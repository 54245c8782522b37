"""Calibrated class probabilities of a binomial GBM or DRF trained with ``calibrate_model``
(``CalibrationMojoHelper``): Platt scaling (a logistic curve of p0) or isotonic calibration of p1.
genmodel's ``PredictCsv --predictCalibrated`` prints them as ``cal_<class>`` beside the answer,
which stays uncalibrated."""

from __future__ import annotations

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from . import _scalar
from .isotonic import IsotonicCurve

np = numpy_when_used(__name__)


class Calibration:
    def __init__(self, info, archive) -> None:
        method = str(info.require("calib_method"))
        self.beta = self.curve = None
        if method == "platt":
            self.beta = [float(v) for v in info.get("calib_glm_beta") or []]
            if len(self.beta) != 2:
                raise CorruptMojoError("Platt calibration needs two coefficients", info.source)
        elif method == "isotonic":
            self.curve = IsotonicCurve(info, archive)
        else:
            raise UnsupportedMojoError(f"calibration method {method!r}", info.source)

    @classmethod
    def of(cls, info, archive) -> Calibration | None:
        return cls(info, archive) if info.get("calib_method") is not None else None

    def batch(self, preds: np.ndarray) -> np.ndarray:
        """``[cal_p0, cal_p1]`` per row of a binomial's ``preds`` (label, p0, p1)."""
        if self.beta is not None:
            with np.errstate(over="ignore"):
                p = 1.0 / (np.exp(-(preds[:, 1] * self.beta[0] + self.beta[1])) + 1.0)
        else:
            p = self.curve.batch(preds[:, 2])
        return np.column_stack([1 - p, p])

    def row(self, preds: list[float]) -> list[float]:
        if self.beta is not None:
            p = 1.0 / (_scalar.exp(-(preds[1] * self.beta[0] + self.beta[1])) + 1.0)
        else:
            p = self.curve.at(preds[2])
        return [1 - p, p]
