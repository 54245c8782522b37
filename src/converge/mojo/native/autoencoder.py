"""DeepLearning autoencoders: the reconstruction of the one-hot, standardised input row.

The output layer uses the hidden activation (``DeeplearningMojoModel.init``); its numeric outputs
are taken back to the input's scale (``modifyOutputs``). Columns are named as
``GenModel.getOutputNames`` names them: ``reconstr_<col>.<level>`` and ``reconstr_<col>.missing(NA)``
per categorical column, then ``reconstr_<col>`` per numeric column.
"""

from __future__ import annotations

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError
from . import _scalar
from .deeplearning import DeepLearningScorer

np = numpy_when_used(__name__)


class AutoEncoderScorer(DeepLearningScorer):
    categories = ("AutoEncoder",)
    activate_output = True

    def __init__(self, info) -> None:
        super().__init__(info)
        names = info.columns[: self.n_features]
        domains = info.domains[: self.n_features]
        cols = []
        for name, dom in zip(names, domains):
            if dom is not None:
                cols += [f"reconstr_{name}.{level}" for level in dom]
                cols.append(f"reconstr_{name}.missing(NA)")
        cols += [f"reconstr_{name}" for name, dom in zip(names, domains) if dom is None]
        _wt, bias, _ratio, k = self.layer_data[-1]
        n_out = len(bias) // k
        if len(cols) != n_out:
            raise CorruptMojoError(f"autoencoder has {n_out} outputs for {len(cols)} columns", info.source)
        self.columns = cols

    def output_columns(self) -> list[str]:
        return list(self.columns)

    def reconstruction(self, out):
        if not self.mul_list:
            return out
        start = out.shape[1] - self.nums
        out = out.copy()
        out[:, start:] = out[:, start:] / self.norm_mul + self.norm_sub
        return out

    def reconstruction_row(self, out: list[float]) -> list[float]:
        if not self.mul_list:
            return out
        start = len(out) - self.nums
        return out[:start] + [_scalar.div(v, m) + s for v, m, s in
                              zip(out[start:], self.mul_list, self.sub_list)]
