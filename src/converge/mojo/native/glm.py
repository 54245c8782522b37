"""GLM (binomial, regression families, multinomial, ordinal): ``GlmMojoModel``,
``GlmMultinomialMojoModel`` and ``GlmOrdinalMojoModel``."""

from __future__ import annotations

from array import array

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, InvalidInputError, UnsupportedMojoError
from . import _compiled, _scalar
from ._base import NativeScorer, lazy_array

np = numpy_when_used(__name__)

_BINOMIAL = ("binomial", "fractionalbinomial", "quasibinomial")


def _is_level(v: float) -> bool:
    """A whole, finite number (a level code can be nothing else)."""
    return v - v == 0 and v == int(v)


def glm_link_inverse(link: str, eta: np.ndarray, tweedie_power: float, source: str) -> np.ndarray:
    """genmodel's ``GLM_*Inv`` for a link name (``LinkFunctionType``), over an array."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if link == "identity":
            return eta
        if link in ("logit", "ologit"):
            return 1.0 / (np.exp(-eta) + 1.0)
        if link == "log":
            return np.exp(eta)
        if link == "inverse":
            xx = np.where(eta < 0, np.minimum(-1e-5, eta), np.maximum(1e-5, eta))
            return 1.0 / xx
        if link == "tweedie":
            if tweedie_power == 0:
                return np.maximum(2e-16, np.exp(eta))
            return np.power(eta, 1.0 / tweedie_power)
    raise UnsupportedMojoError(f"GLM link {link!r}", source)


def softmax_preds(E: np.ndarray) -> np.ndarray:
    """``[label, p...]`` from one eta per class, in genmodel's order of operations (the running
    max starts at 0, NaN never wins; the label is the first class above all before it)."""
    n, K = E.shape
    m = np.zeros(n)
    for c in range(K):
        np.copyto(m, E[:, c], where=E[:, c] > m)
    with np.errstate(over="ignore", invalid="ignore"):
        E = np.exp(E - m[:, None])
    s = np.zeros(n)
    for c in range(K):
        s += E[:, c]
    r = 1.0 / s
    out = np.zeros((n, K + 1))
    max_p = np.zeros(n)
    for c in range(K):
        p = E[:, c] * r
        out[:, c + 1] = p
        better = p > max_p
        max_p = np.where(better, p, max_p)
        out[better, 0] = c
    return out


def glm_link_inverse_row(link: str, eta: float, tweedie_power: float) -> float:
    """``glm_link_inverse`` for one float, in plain Python."""
    if link == "identity":
        return eta
    if link in ("logit", "ologit"):
        return 1.0 / (_scalar.exp(-eta) + 1.0)
    if link == "log":
        return _scalar.exp(eta)
    if link == "inverse":
        xx = _scalar.minimum(-1e-5, eta) if eta < 0 else _scalar.maximum(1e-5, eta)
        return 1.0 / xx
    if tweedie_power == 0:  # tweedie
        return _scalar.maximum(2e-16, _scalar.exp(eta))
    return _scalar.power(eta, 1.0 / tweedie_power)


def softmax_preds_row(E: list[float]) -> list[float]:
    """``softmax_preds`` for one row, in plain Python."""
    m = 0.0
    for e in E:  # a running max that starts at 0; NaN never wins
        if e > m:
            m = e
    E = [_scalar.exp(e - m) for e in E]
    r = _scalar.div(1.0, _scalar.sum_in_order(E))
    label, max_p, probs = 0, 0.0, []
    for c, e in enumerate(E):
        p = e * r
        probs.append(p)
        if p > max_p:
            label, max_p = c, p
    return [float(label), *probs]


class GlmScorer(NativeScorer):
    max_version = 1.0
    # the batch path's arrays of the plain lists that __init__ fills
    beta = lazy_array("beta_list", "float64")
    cat_offsets = lazy_array("offsets_list", "int64")
    cat_modes = lazy_array("modes_list", "float64")
    num_means = lazy_array("means_list", "float64")

    def __init__(self, info) -> None:
        super().__init__(info)
        g = info.get
        self.family = str(info.require("family"))
        self.use_all = bool(g("use_all_factor_levels", False))
        self.cats = int(g("cats", -1))
        self.nums = int(g("nums", -1))
        # plain lists: the one-row path reads them; the batch path reads their arrays below
        self.offsets_list = [int(v) for v in g("cat_offsets", [])]
        self.kernel_offsets = array("q", self.offsets_list or [0])
        self.modes_list = [float(v) for v in g("cat_modes", [])]
        self.means_list = [float(v) for v in g("num_means", [])]
        self.mean_imputation = bool(g("mean_imputation", False))
        self.beta_list = [float(v) for v in info.require("beta")]
        self.kernel_beta = array("d", self.beta_list)
        self.link = str(g("link", ""))
        self.tweedie_power = float(g("tweedie_link_power", 0.0))
        if self.cats < 0 or self.nums < 0 or len(self.offsets_list) != self.cats + 1:
            raise CorruptMojoError("GLM cats/nums/cat_offsets are inconsistent", info.source)
        if self.cats + self.nums != self.n_features:
            raise CorruptMojoError("GLM cats + nums != n_features", info.source)
        self.multinomial = self.family == "multinomial"
        self.ordinal = self.family == "ordinal"
        self.supports_offset = not self.multinomial
        K = self.n_classes if self.multinomial or self.ordinal else 1
        if len(self.beta_list) % K:
            raise CorruptMojoError("GLM beta length is not a multiple of n_classes", info.source)
        self.P = len(self.beta_list) // K
        self.noff = self.offsets_list[-1] - self.cats
        if self.P - 1 - self.noff - self.cats != self.nums:
            raise CorruptMojoError("GLM beta length does not match the features", info.source)
        if not (self.multinomial or self.ordinal) and self.link not in ("identity", "logit", "log", "inverse", "tweedie", "ologit"):
            raise UnsupportedMojoError(f"GLM link {self.link!r}", info.source)
        self.binomial = self.family in _BINOMIAL

    def _impute(self, raw):
        if self.mean_imputation:
            for block, fill in ((raw[:, : self.cats], self.cat_modes),
                                (raw[:, self.cats : self.cats + self.nums], self.num_means)):
                np.copyto(block, fill[: block.shape[1]], where=np.isnan(block))

    def _eta(self, raw: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """eta summed in genmodel's order: categorical terms, numeric terms, intercept."""
        n = raw.shape[0]
        cats = self.cats
        terms = np.zeros((n, cats + self.nums + 1))
        if cats:
            v = raw[:, :cats]
            lo, hi = self.cat_offsets[:-1], self.cat_offsets[1:]
            with np.errstate(invalid="ignore"):
                if self.use_all:
                    bad = np.isnan(v) | (v != np.trunc(v))
                    code = v
                else:
                    nz = v != 0
                    bad = nz & (np.isnan(v) | (v != np.trunc(v)))
                    code = v - 1
            if bad.any():
                self._bad_category(int(np.flatnonzero(bad.any(axis=0))[0]))
            idx = np.where(np.isnan(code), -1, code).astype(np.int64) + lo
            ok = (idx < hi) if self.use_all else (idx >= lo) & (idx < hi) & nz
            terms[:, :cats][ok] = beta[idx[ok]]
        if self.nums:
            terms[:, cats : cats + self.nums] = (
                beta[self.noff + cats : self.noff + cats + self.nums] * raw[:, cats:]
            )
        terms[:, -1] = beta[-1]
        with np.errstate(invalid="ignore"):  # inf - inf = NaN, as in genmodel
            return np.cumsum(terms, axis=1)[:, -1]

    def score(self, raw, offset):
        self._impute(raw)
        n = raw.shape[0]
        if self.ordinal:
            return self._score_ordinal(raw, offset)
        if not self.multinomial:
            eta = self._eta(raw, self.beta)
            if offset is not None:
                eta = eta + offset
            mu = glm_link_inverse(self.link, eta, self.tweedie_power, self.info.source)
            if self.binomial:
                out = np.empty((n, 3))
                out[:, 0] = mu >= self.threshold
                out[:, 1] = 1.0 - mu
                out[:, 2] = mu
                return out
            return mu.reshape(n, 1).astype(np.float64)
        self._check_offset(offset)
        K = self.n_classes
        E = np.empty((n, K))
        for c in range(K):
            E[:, c] = self._eta(raw, self.beta[c * self.P : (c + 1) * self.P])
        return softmax_preds(E)

    def _score_ordinal(self, raw, offset):
        """Cumulative logits: class c's eta (its own block of beta) plus the offset gives
        P(y <= c); each class gets the difference, the last one the rest; the label is the first
        most probable class."""
        n, K = raw.shape[0], self.n_classes
        out = np.zeros((n, K + 1))
        previous = np.zeros(n)
        for c in range(K - 1):
            eta = self._eta(raw, self.beta[c * self.P : (c + 1) * self.P])
            if offset is not None:
                eta = eta + offset
            with np.errstate(over="ignore"):
                cdf = 1.0 / (1 + np.exp(-eta))
            out[:, c + 1] = cdf - previous
            previous = cdf
        out[:, K] = 1 - previous
        best = np.zeros(n, dtype=np.intp)  # ArrayUtils.maxIndex over [0, p...]: NaN never wins
        rows = np.arange(n)
        for i in range(1, K + 1):
            best = np.where(out[:, i] > out[rows, best], i, best)
        out[:, 0] = best - 1
        return out

    def _refuse_offset(self):
        raise UnsupportedMojoError("multinomial GLM does not take an offset", self.info.source)

    # -- one row, in plain Python: the same operations in the same order ---------------------------
    def rows_without_numpy(self) -> bool:
        return True

    def _bad_category(self, col: int):
        raise InvalidInputError(
            f"GLM cannot score a missing/invalid categorical value in column "
            f"{self.info.columns[col]!r} (trained without mean imputation)",
            self.info.source,
        )

    def _eta_row(self, row: list[float], beta: list[float], at: int = 0) -> float:
        """The linear predictor of one row; ``beta`` holds this class's coefficients, which start
        at ``at`` in ``beta_list`` (the compiled kernel reads them there)."""
        kernels = _compiled.kernels
        if kernels is not None:
            eta, bad = kernels.glm_eta(row, self.cats, self.kernel_offsets, self.use_all,
                                       self.kernel_beta, at, self.noff, self.nums)
            if bad >= 0:
                self._bad_category(bad)
            return eta
        cats, offsets = self.cats, self.offsets_list
        terms = []
        for i in range(cats):
            v = row[i]
            if self.use_all:
                if not _is_level(v):
                    self._bad_category(i)
                idx = int(v) + offsets[i]
                terms.append(beta[idx] if idx < offsets[i + 1] else 0.0)
            elif v != 0:
                if not _is_level(v):
                    self._bad_category(i)
                idx = int(v) - 1 + offsets[i]
                terms.append(beta[idx] if offsets[i] <= idx < offsets[i + 1] else 0.0)
            else:
                terms.append(0.0)
        first = self.noff + cats
        terms += [b * x for b, x in zip(beta[first : first + self.nums], row[cats:])]
        terms.append(beta[-1])
        eta = terms[0]
        for t in terms[1:]:  # cumsum's order: categorical terms, numeric terms, intercept
            eta += t
        return eta

    def row_plan(self):
        kernels = _compiled.kernels
        if kernels is None or self.multinomial or self.ordinal or self.link not in _compiled.PLAN_LINKS:
            return None
        fills = (array("d", self.modes_list).tobytes(), array("d", self.means_list).tobytes())
        return kernels.plan_glm(self.kernel_beta.tobytes(), self.kernel_offsets.tobytes(),
                                *(fills if self.mean_imputation else (b"", b"")), self.cats,
                                self.nums, self.noff, self.use_all, self.binomial,
                                _compiled.PLAN_LINKS[self.link], self.threshold)

    def score_row(self, row, offset):
        if self.mean_imputation:
            cats = self.cats
            row = list(row)
            for i, fill in zip(range(cats), self.modes_list):
                if row[i] != row[i]:
                    row[i] = fill
            for i, fill in zip(range(cats, cats + self.nums), self.means_list):
                if row[i] != row[i]:
                    row[i] = fill
        if self.ordinal:
            return self._score_ordinal_row(row, offset)
        if not self.multinomial:
            eta = self._eta_row(row, self.beta_list)
            if offset is not None:
                eta = eta + offset
            mu = glm_link_inverse_row(self.link, eta, self.tweedie_power)
            if self.binomial:
                return [1.0 if mu >= self.threshold else 0.0, 1.0 - mu, mu]
            return [mu]
        self._check_row_offset(offset)
        P = self.P
        E = [self._eta_row(row, self.beta_list[c * P : (c + 1) * P], c * P)
             for c in range(self.n_classes)]
        return softmax_preds_row(E)

    def _score_ordinal_row(self, row, offset) -> list[float]:
        P, K = self.P, self.n_classes
        preds = [0.0] * (K + 1)
        previous = 0.0
        for c in range(K - 1):
            eta = self._eta_row(row, self.beta_list[c * P : (c + 1) * P], c * P)
            if offset is not None:
                eta = eta + offset
            cdf = 1.0 / (1 + _scalar.exp(-eta))
            preds[c + 1] = cdf - previous
            previous = cdf
        preds[K] = 1 - previous
        best = 0
        for i in range(1, K + 1):  # ArrayUtils.maxIndex: the first strictly greater value
            if preds[i] > preds[best]:
                best = i
        preds[0] = float(best - 1)
        return preds
