"""DeepLearning: one-hot + standardised inputs through dense layers, summed in genmodel's order."""

from __future__ import annotations

from array import array
from functools import cached_property

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, InvalidInputError, UnsupportedMojoError
from . import _compiled, _scalar
from ._base import NativeScorer, lazy_array
from .gbm import finish_classification, finish_classification_row

np = numpy_when_used(__name__)

_ACTS = ("Rectifier", "RectifierWithDropout", "Tanh", "TanhWithDropout", "ExpRectifier",
         "ExpRectifierWithDropout", "Maxout", "MaxoutWithDropout")
_CHUNK_CELLS = 1 << 22


def cat_hot_index(raw, cats, cat_offsets, use_all) -> np.ndarray:
    """``GenModel.setCats``: the hot slot per categorical (-1 for none); NaN and levels past the
    training domain go to the last (NA) slot."""
    v = raw[:, :cats]
    nan = np.isnan(v)
    c = np.trunc(np.clip(np.where(nan, 0.0, v), -(2.0**31), 2.0**31 - 1)).astype(np.int64)
    lo = np.asarray(cat_offsets[:cats], dtype=np.int64)
    hi = np.asarray(cat_offsets[1 : cats + 1], dtype=np.int64)
    h = c + lo if use_all else np.where(c != 0, c - 1 + lo, -1)
    h = np.where(h >= hi, hi - 1, h)
    return np.where(nan, hi - 1, h)


def dense(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``NeuralNetwork.formNNInputs``: eight interleaved partial sums over blocks of 8 columns."""
    n, cols = x.shape
    out_n = W.shape[0]
    nb = cols // 8
    full = nb * 8
    res = np.empty((n, out_n))
    step = max(1, _CHUNK_CELLS // max(1, out_n * cols))
    for s in range(0, n, step):
        xs = x[s : s + step]
        m = xs.shape[0]
        z = np.zeros((m, out_n))
        if nb:
            prod = xs[:, None, :full] * W[None, :, :full]  # (m, out, full)
            ps = np.cumsum(prod.reshape(m, out_n, nb, 8), axis=2)[:, :, -1, :]
            z += (ps[..., 0] + ps[..., 1]) + ps[..., 2] + ps[..., 3]
            z += ((ps[..., 4] + ps[..., 5]) + ps[..., 6]) + ps[..., 7]
        for c in range(full, cols):
            z += W[:, c][None, :] * xs[:, c : c + 1]
        z += b[None, :]
        res[s : s + m] = z
    return res


def cat_hot_row(v: float, lo: int, hi: int, use_all: bool) -> int:
    """``cat_hot_index`` for one categorical value whose slots are ``lo..hi-1``."""
    if v != v:
        return hi - 1
    c = int(min(max(v, -(2.0**31)), 2.0**31 - 1))
    h = c + lo if use_all else (c - 1 + lo if c != 0 else -1)
    return hi - 1 if h >= hi else h


def channel_sums(x: np.ndarray, wt: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``NeuralNetwork.formNNInputsMaxOut``: one plain sum per output in column order (no lanes);
    ``wt`` holds one input's weights per row."""
    z = np.zeros((x.shape[0], wt.shape[1]))
    for c in range(x.shape[1]):
        z += x[:, c:c + 1] * wt[c][None, :]
    return z + b[None, :]


def maxout(z: np.ndarray, k: int) -> np.ndarray:
    """``ActivationUtils.MaxoutOut``: per unit the largest of its ``k`` channels, visited at
    genmodel's offsets (its index grows by 0, 1, 2...: the two channels H2O uses)."""
    base = np.arange(z.shape[1] // k) * k
    out = z[:, base]
    for j in range(k):
        c = z[:, base + j * (j + 1) // 2]
        out = np.where(out > c, out, c)
    return out


def input_layer(hot: np.ndarray, nums: np.ndarray, cat_width: int, W: np.ndarray, b: np.ndarray):
    """``formNNInputs`` for the one-hot input layer without touching its zeros.

    A zero input adds a signed zero to a partial sum, which never changes it (a partial sum starting
    at +0.0 cannot become -0.0), so only the hot slots and the numeric inputs are visited, in
    column order, each into its lane (column % 8) or, past the last full block, into the tail.
    """
    n = hot.shape[0]
    out_n, cols = W.shape
    full = (cols // 8) * 8
    rows = np.arange(n)
    lanes = np.zeros((n, 8, out_n))
    tail = []
    for i in range(hot.shape[1]):  # categoricals first: the hot column differs from row to row
        col = hot[:, i]
        x = (col >= 0).astype(np.float64)
        col = np.where(col >= 0, col, 0)
        contrib = W[:, col].T * x[:, None]  # (n, out)
        in_lane = col < full
        if in_lane.all():
            lanes[rows, col % 8] += contrib
        else:
            lanes[rows, col % 8] += np.where(in_lane[:, None], contrib, 0.0)
            tail.append(np.where(in_lane[:, None], 0.0, contrib))
    for j in range(nums.shape[1]):  # then the numerics, at fixed columns
        c = cat_width + j
        contrib = W[:, c][None, :] * nums[:, j : j + 1]
        if c < full:
            lanes[:, c % 8] += contrib
        else:
            tail.append(contrib)
    z = np.zeros((n, out_n))
    z += ((lanes[:, 0] + lanes[:, 1]) + lanes[:, 2]) + lanes[:, 3]
    z += ((lanes[:, 4] + lanes[:, 5]) + lanes[:, 6]) + lanes[:, 7]
    for t in tail:
        z += t
    z += b[None, :]
    return z


class DeepLearningScorer(NativeScorer):
    max_version = 1.10
    categories = ("Binomial", "Multinomial", "Regression")
    #: the output layer goes through the activation too, and ``reconstruction`` finishes (autoencoders)
    activate_output = False
    # the batch path's arrays of the plain lists that __init__ fills
    cat_offsets = lazy_array("offsets_list", "int64")
    norm_mul = lazy_array("mul_list", "float64")
    norm_sub = lazy_array("sub_list", "float64")

    def __init__(self, info) -> None:
        super().__init__(info)
        g = info.get
        if str(g("_genmodel_encoding", "AUTO")) not in ("AUTO", "Enum", "SortByResponse") and info.mojo_version >= 1.1:
            raise UnsupportedMojoError(f"categorical encoding {g('_genmodel_encoding')!r}", info.source)
        if str(g("category", "")) not in self.categories:
            raise UnsupportedMojoError(f"DeepLearning category {g('category')!r}", info.source)
        self.act = str(info.require("activation"))
        if self.act not in _ACTS:
            raise UnsupportedMojoError(f"activation {self.act!r}", info.source)
        self.dropout = self.act.endswith("WithDropout")
        self.maxout = self.act.startswith("Maxout")
        self.act_kind = 0 if self.act.startswith("Rectifier") else 1 if self.act.startswith("Tanh") else 2
        self.family = str(info.require("distribution"))
        if self.family == "modified_huber":
            raise UnsupportedMojoError("modified_huber DeepLearning (genmodel returns constants)", info.source)
        self.nums = int(info.require("nums"))
        self.cats = int(info.require("cats"))
        self.offsets_list = [int(v) for v in g("cat_offsets", [])]
        self.mul_list = [float(v) for v in g("norm_mul", [])]
        self.sub_list = [float(v) for v in g("norm_sub", [])]
        self.resp_mul = g("norm_resp_mul")
        self.resp_sub = g("norm_resp_sub")
        self.use_all = bool(info.require("use_all_factor_levels"))
        units = [int(u) for u in info.require("neural_network_sizes")]
        drop = list(g("hidden_dropout_ratios", []))
        # per layer: weights rounded to float32 as genmodel stores them and transposed (one
        # input's weights contiguous, as the compiled layer reads them), biases, dropout ratio,
        # and the channels per unit (Maxout's k, from the biases; 1 for the others)
        self.layer_data: list[tuple[array, array, float, int]] = []
        for layer in range(len(units) - 1):
            n_in, n_out = units[layer], units[layer + 1]
            w = array("f", info.require(f"weight_layer{layer}"))
            b = array("d", info.require(f"bias_layer{layer}"))
            activated = layer < len(units) - 2 or self.activate_output
            k = len(b) // n_out if self.maxout and activated else 1
            if len(w) != n_in * n_out * k or len(b) != n_out * k:
                raise CorruptMojoError(f"layer {layer} weights do not match neural_network_sizes", info.source)
            if self.maxout and activated and k != 2:  # k is 1 for every other layer
                raise UnsupportedMojoError(f"Maxout with {k} channels per unit (H2O uses 2)",
                                           info.source)
            ratio = float(drop[layer]) if layer < len(drop) else 0.0
            # output o = k * unit + channel takes w[k * (unit * n_in + c) + channel]
            wt = array("d", [w[k * ((o // k) * n_in + c) + o % k]
                             for c in range(n_in) for o in range(n_out * k)])
            self.layer_data.append((wt, b, ratio, k))
        if len(self.offsets_list) != self.cats + 1 or units[0] != self.offsets_list[-1] + self.nums:
            raise CorruptMojoError("DeepLearning input layer does not match cats/nums", info.source)

    @cached_property
    def layers(self) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """(W of shape (out, in), b, dropout ratio) per layer, for the NumPy layers (only built
        without the compiled kernels)."""
        out = []
        for wt, b, ratio, _k in self.layer_data:
            b_arr = np.frombuffer(b, dtype=np.float64)
            WT = np.frombuffer(wt, dtype=np.float64).reshape(-1, b_arr.size)
            out.append((np.ascontiguousarray(WT.T), b_arr, ratio))
        return out

    def _maxout_layer(self, x: np.ndarray, wt, b, k: int, ratio: float) -> np.ndarray:
        """A Maxout layer with k > 1 channels, activated (dropout's scaling included)."""
        kernels = _compiled.kernels
        ratio = ratio if self.dropout else 0.0
        if kernels is not None:
            out = np.empty((x.shape[0], len(b) // k))
            kernels.maxout_layer(x, x.shape[0], x.shape[1], wt, len(b), b, k, ratio, out)
            return out
        wt_arr = np.frombuffer(wt, dtype=np.float64).reshape(-1, len(b))
        out = maxout(channel_sums(x, wt_arr, np.frombuffer(b, dtype=np.float64)), k)
        return out * (1.0 - ratio) if ratio > 0 else out

    def _hidden(self, z, ratio):  # Maxout's layers go through _maxout_layer
        a = self.act
        if a.startswith("Rectifier"):
            out = 0.5 * (z + np.abs(z))
        elif a.startswith("Tanh"):
            with np.errstate(over="ignore"):
                out = 1.0 - 2.0 / (1.0 + np.exp(2.0 * z))
        else:
            with np.errstate(over="ignore"):
                out = np.where(z >= 0, z, np.exp(np.minimum(z, 0)) - 1)
        if a.endswith("WithDropout") and ratio > 0:
            out = out * (1.0 - ratio)
        return out

    def score(self, raw, offset):
        # +/-inf inputs give inf - inf = NaN, exactly as in genmodel (which then refuses the row)
        with np.errstate(over="ignore", invalid="ignore"):
            return self._score(raw, offset)

    def _score(self, raw, offset):
        self._check_offset(offset)
        n = raw.shape[0]
        hot = cat_hot_index(raw, self.cats, self.cat_offsets, self.use_all)
        nums = raw[:, self.cats : self.cats + self.nums]
        if self.norm_mul.size:
            nums = (nums - self.norm_sub) * self.norm_mul
        nums = np.where(np.isnan(nums), 0.0, nums)
        x = None
        kernels = _compiled.kernels
        width = int(self.cat_offsets[-1])
        last = len(self.layer_data) - 1
        for li, (wt, b, ratio, k) in enumerate(self.layer_data):
            if k > 1:  # Maxout's channels: plain sums over the whole input row, then the largest
                if li == 0:
                    x = np.zeros((n, width + nums.shape[1]))
                    rows = np.arange(n)
                    for i in range(hot.shape[1]):
                        on = hot[:, i] >= 0
                        x[rows[on], hot[on, i]] = 1.0
                    x[:, width:] = nums
                x = self._maxout_layer(np.ascontiguousarray(x), wt, b, k, ratio)
                continue
            if kernels is not None:  # reads the transposed weights as they are stored
                if li > 0:  # a hidden layer: every input numeric, none one-hot
                    hot, nums, width = np.empty((n, 0), dtype=np.int64), x, 0
                hot = np.ascontiguousarray(hot, dtype=np.int64)
                nums = np.ascontiguousarray(nums, dtype=np.float64)
                n_out = len(b)
                z = np.empty((n, n_out))
                kernels.layer(hot, n, hot.shape[1], nums, nums.shape[1], width,
                              wt, len(wt) // max(n_out, 1), b, n_out, z)
            elif li == 0:
                z = input_layer(hot, nums, width, *self.layers[li][:2])
            else:
                z = dense(x, *self.layers[li][:2])
            x = self._hidden(z, ratio) if li < last or self.activate_output else z
        if self.activate_output:
            return self.reconstruction(x)
        if self.n_classes > 1:
            m = x[:, :1].copy()
            for k in range(1, x.shape[1]):  # temp < input ? input : temp
                m = np.where(m < x[:, k : k + 1], x[:, k : k + 1], m)
            with np.errstate(over="ignore", invalid="ignore"):
                e = np.exp(x - m)
            s = np.zeros(n)
            for k in range(e.shape[1]):
                s += e[:, k]
            P = e / s[:, None]
            if np.isnan(P).any():
                raise InvalidInputError("DeepLearning predicted a NaN class probability", self.info.source)
            return finish_classification(self, P, raw)
        v = x[:, 0]
        if self.resp_mul is not None:
            v = v / self.resp_mul[0] + self.resp_sub[0]
        f = self.family
        with np.errstate(over="ignore"):
            if f in ("bernoulli", "quasibinomial", "modified_huber", "ordinal"):
                v = 1 / (1 + np.minimum(1e19, np.exp(-v)))
            elif f in ("multinomial", "poisson", "gamma", "tweedie"):
                v = np.minimum(1e19, np.exp(v))
        if np.isnan(v).any():
            raise InvalidInputError("DeepLearning predicted NaN", self.info.source)
        return v.reshape(n, 1)

    # -- one row, in plain Python and the compiled layer ------------------------------------------
    def rows_without_numpy(self) -> bool:
        return _compiled.kernels is not None

    def _hot_row(self, row: list[float]) -> list[int]:
        """``cat_hot_index`` for one row."""
        offsets = self.offsets_list
        return [cat_hot_row(row[i], offsets[i], offsets[i + 1], self.use_all) for i in range(self.cats)]

    def _input_row(self, hot, nums: list[float]) -> list[float]:
        """The input layer's whole row: 1 at each hot slot, then the numbers."""
        x = [0.0] * self.offsets_list[-1]
        for h in hot:
            if h >= 0:
                x[h] = 1.0
        return x + nums

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        cats = self.cats
        nums = row[cats : cats + self.nums]
        if self.mul_list:
            nums = [(v - s) * m for v, s, m in zip(nums, self.sub_list, self.mul_list)]
        x = [0.0 if v != v else v for v in nums]
        hot = array("q", self._hot_row(row))
        width = self.offsets_list[-1]
        last = len(self.layer_data) - 1
        for li, (wt, b, ratio, k) in enumerate(self.layer_data):
            if k > 1:
                if li == 0:
                    x = self._input_row(hot, x)
                z = array("d", bytes(8 * (len(b) // k)))
                _compiled.kernels.maxout_layer(array("d", x), 1, len(x), wt, len(b), b, k,
                                               ratio if self.dropout else 0.0, z)
                x = z.tolist()
                hot, width = array("q"), 0
                continue
            n_out = len(b)
            z = array("d", bytes(8 * n_out))
            _compiled.kernels.layer(hot, 1, len(hot), array("d", x), len(x), width, wt,
                                    len(wt) // max(n_out, 1), b, n_out, z)
            if li < last or self.activate_output:  # the activation (and dropout's scaling) in place
                _compiled.kernels.activate(z, self.act_kind, ratio if self.dropout else 0.0)
            x = z.tolist()
            hot, width = array("q"), 0  # the next layer's inputs are all numeric
        if self.activate_output:
            return self.reconstruction_row(x)
        if self.n_classes > 1:
            m = x[0]
            for v in x[1:]:  # temp < input ? input : temp
                m = v if m < v else m
            e = [_scalar.exp(v - m) for v in x]
            s = _scalar.sum_in_order(e)
            P = [_scalar.div(v, s) for v in e]
            if any(p != p for p in P):
                raise InvalidInputError("DeepLearning predicted a NaN class probability", self.info.source)
            return finish_classification_row(self, P, row)
        v = x[0]
        if self.resp_mul is not None:
            v = _scalar.div(v, self.resp_mul[0]) + self.resp_sub[0]
        f = self.family
        if f in ("bernoulli", "quasibinomial", "modified_huber", "ordinal"):
            v = 1 / (1 + _scalar.minimum(1e19, _scalar.exp(-v)))
        elif f in ("multinomial", "poisson", "gamma", "tweedie"):
            v = _scalar.minimum(1e19, _scalar.exp(v))
        if v != v:
            raise InvalidInputError("DeepLearning predicted NaN", self.info.source)
        return [v]
