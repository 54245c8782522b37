"""GAM (``GamMojoModel``, ``GamMojoMultinomialModel``): a GLM over the predictors and the spline
bases of the gam columns, which the scorer builds from the raw gam column values.

The MOJO's own columns are the predictors followed by the centred spline columns; a caller gives
the predictors and the raw gam columns instead (``with_gam_sources``), as genmodel's row converter
reads them. genmodel 3.46.0.11 reads some models it then fails to score on every row
(thin-plate splines with ``standardize``; an M-spline after another spline kind, which it centres
with another column's matrix); converge refuses those when it loads them, with the reason.
"""

from __future__ import annotations

import dataclasses
import struct

from .._ini import _unescape, split_java_lines
from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from . import _gam_splines as splines
from . import _scalar
from ._base import NativeScorer
from .glm import glm_link_inverse, glm_link_inverse_row, softmax_preds, softmax_preds_row

np = numpy_when_used(__name__)

CS, TP, IS, MS = 0, 1, 2, 3
_CLASSIFIER_FAMILIES = ("bernoulli", "fractionalbinomial", "quasibinomial")
_DEFAULT_LINKS = {"bernoulli": "logit", "fractionalbinomial": "logit", "quasibinomial": "logit",
                  "ordinal": "logit", "poisson": "log", "gamma": "log", "tweedie": "log"}


def _ints(info, key: str) -> list[int]:
    return [int(v) for v in info.get(key) or []]


def _text_arrays(archive, info, name: str, dims: list[int]) -> list[list[str]]:
    lines = [_unescape(s) for s in split_java_lines(archive.read_text(name))]
    if len(lines) < sum(dims):
        raise CorruptMojoError(f"{name} has {len(lines)} lines, expected {sum(dims)}", info.source)
    out, at = [], 0
    for d in dims:
        out.append(lines[at:at + d])
        at += d
    return out


class _Blob:
    """genmodel's ``ByteBuffer`` over a blob: big-endian values read in order."""

    def __init__(self, archive, info, name: str) -> None:
        self.data, self.at, self.name, self.source = archive.read_bytes(name), 0, name, info.source

    def take(self, code: str, count: int) -> np.ndarray:
        size = struct.calcsize(code) * count
        if self.at + size > len(self.data):
            raise CorruptMojoError(f"{self.name} is too short", self.source)
        values = np.frombuffer(self.data, dtype=f">{code}", count=count, offset=self.at)
        self.at += size
        return values.astype(np.float64 if code == "d" else np.int64)

    def arrays3d(self, code: str, rows: list[int], cols: list[int]) -> list[np.ndarray]:
        """``read3DArray``/``read3DIntArray``: matrix i is rows[i] x cols[i]."""
        return [self.take(code, r * c).reshape(r, c) for r, c in zip(rows, cols)]


def gam_sources(archive, info) -> list[str]:
    """The raw gam columns, in genmodel's sorted order, each once."""
    sorted_columns = _text_arrays(archive, info, "gam_columns_sorted",
                                  _ints(info, "gam_column_dim_sorted"))
    return list(dict.fromkeys(name for spec in sorted_columns for name in spec))


def with_gam_sources(archive, info):
    """``info`` with the columns a caller gives: the predictors, then the raw gam columns that are
    not predictors (numbers); the response stays last."""
    expanded = int(info.require("num_expanded_gam_columns_center"))
    base = info.n_features - expanded
    if base < 0:
        raise CorruptMojoError("GAM has more spline columns than features", info.source)
    features = info.columns[:base]
    extra = [c for c in gam_sources(archive, info) if c not in features]
    tail = info.columns[info.n_features:]
    return dataclasses.replace(
        info, columns=[*features, *extra, *tail],
        domains=[*info.domains[:base], *[None] * len(extra), *info.domains[info.n_features:]],
        info={**info.info, "n_features": base + len(extra)},
        extra={**info.extra, "gam_model_features": info.n_features})


class GamScorer(NativeScorer):
    max_version = 1.0

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        g = info.get
        if "gam_model_features" not in info.extra:  # read as a StackedEnsemble's or pipeline's part
            raise UnsupportedMojoError(
                "a GAM inside another model: genmodel 3.46.0.11 cannot load it either (the outer "
                "model has no input for the GAM's spline columns)", info.source)
        self.model_features = int(info.extra["gam_model_features"])
        self.family = str(info.require("family"))
        self.link = str(g("link", "")) or _DEFAULT_LINKS.get(self.family, "identity")
        self.tweedie_power = float(g("tweedie_link_power", 0.0))
        self.use_all = bool(g("use_all_factor_levels", False))
        self.cats = int(g("cats", -1))
        self.cat_offsets = _ints(info, "cat_offsets")
        self.mean_imputation = bool(g("mean_imputation", False))
        self.cat_fills = _ints(info, "catNAFills")
        self.num_fills = [float(v) for v in g("numNAFillsCenter") or []]
        self.multiclass = self.family in ("multinomial", "ordinal")
        if self.multiclass:
            width = int(info.require("beta center length per class"))
            blob = _Blob(archive, info, "beta_multinomial_centering")
            self.betas = [blob.take("d", width) for _ in range(self.n_classes)]
        else:
            self.betas = [np.asarray(info.require("beta_center"), dtype=np.float64)]
        self.beta_lists = [beta.tolist() for beta in self.betas]
        if self.cats < 0 or len(self.cat_offsets) != self.cats + 1:
            raise CorruptMojoError("GAM cats/cat_offsets are inconsistent", info.source)
        self._read_splines(archive, info)

    # -- reading, as GamMojoReader does (its dimensions included) ----------------------------------
    def _read_splines(self, archive, info) -> None:
        source = info.source
        kinds = _ints(info, "bs_sorted")
        knots_n = _ints(info, "num_knots_sorted")
        orders = _ints(info, "spline_orders_sorted") or [0] * len(kinds)
        dims = _ints(info, "_d")
        columns = _text_arrays(archive, info, "gam_columns_sorted",
                               _ints(info, "gam_column_dim_sorted"))
        counts = {k: int(info.require(key)) for k, key in
                  ((CS, "num_CS_col"), (TP, "num_TP_col"), (IS, "num_IS_col"), (MS, "num_MS_col"))}
        if not (len(kinds) == len(knots_n) == len(dims) == len(columns) == len(orders)):
            raise CorruptMojoError("GAM spline arrays differ in length", source)
        z_rows, z_cols = [], []
        for kind, n, order in zip(kinds, knots_n, orders):
            if kind == IS:
                z_rows.append(0), z_cols.append(0)
            elif kind == MS:
                z_rows.append(n + order - 3), z_cols.append(n + order - 2)
            else:
                z_rows.append(n - 1), z_cols.append(n)
        z = _Blob(archive, info, "zTranspose").arrays3d("d", z_rows, z_cols)
        knots = _Blob(archive, info, "knots").arrays3d("d", dims, knots_n)
        n_cs, n_tp = counts[CS], counts[TP]
        binv_d = (_Blob(archive, info, "_binvD").arrays3d("d", [n - 2 for n in knots_n[:n_cs]],
                                                          knots_n[:n_cs]) if n_cs else [])
        if n_tp:
            if bool(info.get("standardize", False)):
                raise UnsupportedMojoError(
                    "GAM thin plate splines with standardize=True: genmodel 3.46.0.11 reads no "
                    "column means for them and fails on every row", source)
            m, big_m, tp_knots = _ints(info, "_m"), _ints(info, "_M"), _ints(info, "num_knots_TP")
            z_cs = _Blob(archive, info, "zTransposeCS").arrays3d(
                "d", [k - M for k, M in zip(tp_knots, big_m)], tp_knots)
            # genmodel sizes each polynomial list with the dimensions that follow the CS columns
            powers = _Blob(archive, info, "polynomialBasisList").arrays3d(
                "i", big_m, dims[n_cs:n_cs + n_tp])
        self.start = self.model_features - int(info.require("num_expanded_gam_columns_center"))
        self.splines, counters, at = [], {CS: 0, TP: 0, IS: 0, MS: 0}, self.start
        for c, kind in enumerate(kinds):
            i = counters[kind]
            counters[kind] += 1
            inputs = [self.info.columns.index(name) for name in columns[c]]
            if kind == CS:
                spline = _CubicRegression(inputs, knots[c][0], binv_d[c], z[c])
            elif kind == IS:
                spline = _Plain(inputs, splines.ISplines(orders[c], list(knots[c][0])))
            elif kind == MS:  # centred with z of the i-th gam column (sic)
                basis = splines.MSplines(orders[c], list(knots[c][0]))
                spline = _Centred(inputs, basis, z[i], basis.count - 1)
            elif kind == TP:
                spline = _ThinPlate(inputs, knots[c], dims[c], m[i], z_cs[i], powers[i], z[c])
            else:
                raise UnsupportedMojoError(f"GAM spline type {kind}", source)
            problem = spline.problem()
            if problem is None and at + spline.width > self.model_features:
                problem = "its spline columns run past the end of the row"
            if problem is not None:
                raise UnsupportedMojoError(
                    f"GAM gam column {'/'.join(columns[c])}: {problem}; genmodel 3.46.0.11 fails "
                    "on every row of this model", source)
            self.splines.append((at, spline))
            at += knots_n[c] - 1  # genmodel advances by knots - 1 whatever the spline's width

    # -- scoring -----------------------------------------------------------------------------------
    def _model_rows(self, raw: np.ndarray) -> np.ndarray:
        """``addExpandGamCols``: the predictors, then each spline's columns where its inputs are
        all present (missing otherwise), later splines overwriting earlier ones where they meet."""
        n = raw.shape[0]
        data = np.full((n, self.model_features), np.nan)
        data[:, :self.start] = raw[:, :self.start]
        for at, spline in self.splines:
            values = raw[:, spline.inputs]
            present = ~np.isnan(values).any(axis=1)
            if present.any():
                data[present, at:at + spline.width] = spline.basis(values[present])
        if self.mean_imputation:
            for i, fill in enumerate(self.cat_fills[:self.cats]):
                np.copyto(data[:, i], float(fill), where=np.isnan(data[:, i]))
            for i, fill in enumerate(self.num_fills):
                col = data[:, self.cats + i]
                np.copyto(col, fill, where=np.isnan(col))
        return data

    def _eta(self, data: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """``generateEta``: categorical terms, numeric terms, intercept, summed in that order."""
        n = data.shape[0]
        eta = np.zeros(n)
        offsets = self.cat_offsets
        for i in range(self.cats):
            v = np.nan_to_num(data[:, i], nan=0.0)  # Java's (int) NaN is 0
            with np.errstate(invalid="ignore"):
                level = np.trunc(np.clip(v, -2.0**31, 2.0**31 - 1)).astype(np.int64)
            idx = (level if self.use_all else level - 1)
            ok = idx >= 0
            idx = idx + offsets[i]
            ok &= (idx < offsets[i + 1]) & (idx >= 0)
            eta[ok] += beta[idx[ok]]
        noff = offsets[self.cats] - self.cats
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(self.cats, len(beta) - 1 - noff):
                eta += beta[noff + i] * data[:, i]
            eta += beta[-1]
        return eta

    def score(self, raw, offset):
        self._check_offset(offset)
        data = self._model_rows(raw)
        n = data.shape[0]
        if not self.multiclass:
            mu = glm_link_inverse(self.link, self._eta(data, self.betas[0]), self.tweedie_power,
                                  self.info.source)
            if self.family not in _CLASSIFIER_FAMILIES:
                return mu.reshape(n, 1)
            return np.column_stack([(mu >= self.threshold).astype(np.float64), 1.0 - mu, mu])
        E = np.column_stack([self._eta(data, beta) for beta in self.betas])
        if self.family == "multinomial":
            return softmax_preds(E)
        return _ordinal_preds(E)

    # -- one row, in plain Python: the same operations in the same order ---------------------------
    def rows_without_numpy(self) -> bool:
        return True

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        nan = float("nan")
        data = row[:self.start] + [nan] * (self.model_features - self.start)
        for at, spline in self.splines:
            values = [row[i] for i in spline.inputs]
            if all(v == v for v in values):
                data[at:at + spline.width] = spline.basis_row(values)
        if self.mean_imputation:
            for i, fill in enumerate(self.cat_fills[:self.cats]):
                if data[i] != data[i]:
                    data[i] = float(fill)
            for i, fill in enumerate(self.num_fills, start=self.cats):
                if data[i] != data[i]:
                    data[i] = fill
        etas = [self._eta_row(data, beta) for beta in self.beta_lists]
        if not self.multiclass:
            mu = glm_link_inverse_row(self.link, etas[0], self.tweedie_power)
            if self.family not in _CLASSIFIER_FAMILIES:
                return [mu]
            return [1.0 if mu >= self.threshold else 0.0, 1.0 - mu, mu]
        if self.family == "multinomial":
            return softmax_preds_row(etas)
        return _ordinal_preds_row(etas)

    def _eta_row(self, data: list[float], beta: list[float]) -> float:
        eta = 0.0
        offsets = self.cat_offsets
        for i in range(self.cats):
            v = data[i]
            level = 0 if v != v else int(min(max(v, -2.0**31), 2.0**31 - 1))
            idx = level if self.use_all else level - 1
            if idx >= 0:
                idx += offsets[i]
                if 0 <= idx < offsets[i + 1]:
                    eta += beta[idx]
        noff = offsets[self.cats] - self.cats
        for i in range(self.cats, len(beta) - 1 - noff):
            eta += beta[noff + i] * data[i]
        return eta + beta[-1]


def _ordinal_preds(E: np.ndarray) -> np.ndarray:
    """``postPredOrdinal``: the label is the first class whose eta is positive (else the last);
    each class gets its cumulative logistic's step, the last the rest."""
    n, K = E.shape
    out = np.zeros((n, K + 1))
    previous = np.zeros(n)
    with np.errstate(over="ignore"):
        for c in range(K - 1):
            cdf = 1.0 / (1 + np.exp(-E[:, c]))
            out[:, c + 1] = cdf - previous
            previous = cdf
    out[:, K] = 1 - previous
    positive = E[:, :K - 1] > 0
    out[:, 0] = np.where(positive.any(axis=1), positive.argmax(axis=1), K - 1)
    return out


def _ordinal_preds_row(E: list[float]) -> list[float]:
    K = len(E)
    out = [0.0] * (K + 1)
    previous = 0.0
    for c in range(K - 1):
        cdf = 1.0 / (1 + _scalar.exp(-E[c]))
        out[c + 1] = cdf - previous
        previous = cdf
    out[K] = 1 - previous
    out[0] = float(next((c for c in range(K - 1) if E[c] > 0), K - 1))
    return out


class _Spline:
    """One gam column's basis: ``inputs`` (raw column indices) to ``width`` model columns."""

    inputs: list[int]
    width: int

    def problem(self) -> str | None:
        """Why genmodel cannot score rows with this spline (None: it can)."""
        return None

    def basis(self, values: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def basis_row(self, values: list[float]) -> list[float]:  # pragma: no cover
        raise NotImplementedError


def _centring_problem(z: np.ndarray, width: int, length: int) -> str | None:
    if z.shape[0] < width or z.shape[1] < length:
        return (f"its {length} basis values are centred to {width} columns with a "
                f"{z.shape[0]}x{z.shape[1]} matrix")
    return None


class _CubicRegression(_Spline):
    def __init__(self, inputs, knots, binv_d, z) -> None:
        self.inputs, self.knots, self.binv_d, self.z = inputs, knots, binv_d, z
        self.width = len(knots) - 1
        self.rows = (knots.tolist(), binv_d.tolist(), z.tolist())

    def problem(self):
        return _centring_problem(self.z, self.width, len(self.knots))

    def basis(self, values):
        raw = splines.cubic_regression(values[:, 0], self.knots, self.binv_d)
        return splines.mult_transposed(raw, self.z, self.width)

    def basis_row(self, values):
        knots, binv_d, z = self.rows
        raw = splines.cubic_regression_row(values[0], knots, binv_d)
        return splines.mult_transposed_row(raw, z, self.width)


class _Plain(_Spline):
    """I-splines: their values as they are, one column per basis function."""

    def __init__(self, inputs, basis) -> None:
        self.inputs, self.spline, self.width = inputs, basis, basis.count

    def basis(self, values):
        return self.spline.basis(values[:, 0])

    def basis_row(self, values):
        return self.spline.basis_row(values[0])


class _Centred(_Spline):
    """M-splines: their values times a centring matrix."""

    def __init__(self, inputs, basis, z, width) -> None:
        self.inputs, self.spline, self.z, self.width = inputs, basis, z, width
        self.z_rows = z.tolist()

    def problem(self):
        return _centring_problem(self.z, self.width, self.spline.count)

    def basis(self, values):
        return splines.mult_transposed(self.spline.basis(values[:, 0]), self.z, self.width)

    def basis_row(self, values):
        return splines.mult_transposed_row(self.spline.basis_row(values[0]), self.z_rows, self.width)


class _ThinPlate(_Spline):
    def __init__(self, inputs, knots, d, m, z_cs, powers, z) -> None:
        self.inputs, self.knots, self.d, self.m = inputs, knots, d, m
        self.z_cs, self.powers, self.z = z_cs, powers, z
        self.constant = splines.thin_plate_constant(m, d)
        self.width = knots.shape[1] - 1
        self.rows = (knots.tolist(), z_cs.tolist(), powers[:, :d].tolist(), z.tolist())

    def problem(self):
        n = self.knots.shape[1]
        if self.powers.shape[1] < self.d:
            return (f"genmodel reads its polynomial powers for {self.powers.shape[1]} columns, "
                    f"not {self.d}")
        if self.z_cs.shape[1] < n:
            return f"its {n} distances meet a {self.z_cs.shape[0]}x{self.z_cs.shape[1]} matrix"
        if len(self.inputs) != self.d:
            return f"it names {len(self.inputs)} columns for {self.d} dimensions"
        return _centring_problem(self.z, self.width, n)

    def basis(self, values):
        distances = splines.thin_plate_distances(values, self.knots, self.m, self.constant)
        with_z = splines.mult_transposed(distances, self.z_cs, self.z_cs.shape[0])
        poly = splines.thin_plate_polynomials(values, self.powers[:, :self.d])
        return splines.mult_transposed(np.hstack([with_z, poly]), self.z, self.width)

    def basis_row(self, values):
        knots, z_cs, powers, z = self.rows
        distances, poly = splines.thin_plate_row(values, knots, self.m, self.constant, powers)
        with_z = splines.mult_transposed_row(distances, z_cs, len(z_cs))
        return splines.mult_transposed_row(with_z + poly, z, self.width)
