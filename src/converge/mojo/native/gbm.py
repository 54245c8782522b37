"""GBM: tree sums plus ``init_f`` and offset through the distribution's inverse link."""

from __future__ import annotations

from .._numpy import numpy_when_used
from ..errors import UnsupportedMojoError
from . import _compiled, _labels, _scalar
from ._base import NativeScorer
from .calibration import Calibration
from ._trees import load_forest

np = numpy_when_used(__name__)

_LOGIT_DISTS = ("bernoulli", "quasibinomial", "modified_huber", "fractionalbinomial", "ordinal")
_LOG_DISTS = ("multinomial", "poisson", "gamma", "tweedie")


def _exp(x):
    """``min(1e19, Math.exp(x))``; clipping the argument first avoids overflow, same result."""
    return np.minimum(1e19, np.exp(np.minimum(x, 50.0)))


def gbm_link_inv(link: str, f: np.ndarray) -> np.ndarray:
    """``GbmMojoModel.linkInv`` (note the ``max(-1e-5, f)`` quirk for ``inverse``)."""
    if link == "identity":
        return f
    if link == "log":
        return _exp(f)
    if link in ("logit", "ologit"):
        return 1.0 / (1.0 + _exp(-f))
    if link == "ologlog":
        return 1.0 - _exp(-1.0 * _exp(f))
    if link == "oprobit":
        return np.zeros_like(f)
    if link == "inverse":
        xx = np.where(f < 0, np.minimum(-1e-5, f), np.maximum(-1e-5, f))
        with np.errstate(divide="ignore"):
            return 1.0 / xx
    return f


def _exp_row(x: float) -> float:
    return min(1e19, _scalar.exp(min(x, 50.0))) if x == x else x


def gbm_link_inv_row(link: str, f: float) -> float:
    """``gbm_link_inv`` for one value."""
    if link == "log":
        return _exp_row(f)
    if link in ("logit", "ologit"):
        return 1.0 / (1.0 + _exp_row(-f))
    if link == "ologlog":
        return 1.0 - _exp_row(-1.0 * _exp_row(f))
    if link == "oprobit":
        return 0.0
    if link == "inverse":
        xx = _scalar.minimum(-1e-5, f) if f < 0 else _scalar.maximum(-1e-5, f)
        return _scalar.div(1.0, xx)
    return f  # identity, and links genmodel leaves as they are


class TreeScorer(NativeScorer):
    """Shared reading of tree MOJO keys (GBM, DRF/XRT)."""

    max_version = 1.40

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        enc = str(info.get("_genmodel_encoding", "AUTO"))
        if enc not in ("AUTO", "Enum", "SortByResponse"):
            raise UnsupportedMojoError(f"categorical encoding {enc!r}", info.source)
        # calibration adds calibrated probabilities; the answer stays genmodel's classProbabilities
        self.calibration = Calibration.of(info, archive) if self.n_classes == 2 else None
        self.n_groups = int(info.require("n_trees"))
        K = self.n_classes
        tpc = info.get("n_trees_per_class")
        if tpc is None:
            double = bool(info.get("binomial_double_trees", False))
            tpc = 1 if K == 1 or (K == 2 and not double) else K
        self.tpc = int(tpc)
        self.forest = load_forest(archive, info, self.tpc, self.n_groups)
        self._archive = archive  # aux files are read by the first contributions call

    def calibrated(self, raw) -> list[list[float]]:
        """``[cal_p0, cal_p1]`` per row (a binomial trained with ``calibrate_model``)."""
        if self.calibration is None:
            raise UnsupportedMojoError("calibrated probabilities: the model was not trained with "
                                       "calibrate_model (binomial GBM and DRF only)", self.info.source)
        return self.calibration.batch(self.score(raw, None)).tolist()

    def __getstate__(self) -> dict:
        """Pickled (a model parsed in the parser process) without the archive, which reads the
        zip, but with the files contributions need, read there and then."""
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_archive", "_trees_for_shap", "_shap_forest")}
        if "_archive" in self.__dict__:
            state["_shap_files"] = self._shap_files()
        return state

    def _shap_files(self) -> dict[str, bytes]:
        """The trees' aux files and the model details (variable importances), by name."""
        files = getattr(self, "_shap_files_read", None)
        if files is None:
            archive = self._archive
            names = [n for n in archive.names("trees/") if n.endswith("_aux.bin")]
            names += [n for n in ("experimental/modelDetails.json",) if archive.exists(n)]
            files = self._shap_files_read = {n: archive.read_bytes(n) for n in names}
        return files

    def _shap_file(self, name: str) -> bytes | None:
        files = self.__dict__.get("_shap_files") or self._shap_files()
        return files.get(name)

    def leaf_assignment(self, raw, node_ids: bool = False) -> tuple[list[str], list[list]]:
        """``predictLeafNodeAssignment``: per row, each tree's path to its leaf (or, with
        ``node_ids``, H2O's id of that leaf), named as PredictCsv names the trees
        (``T<group>.C<class>``, class by class)."""
        trees = self._shap_trees(by_class=True)
        names = [f"T{g + 1}.C{k + 1}" for k, g, _ in trees]
        rows = []
        for row in raw:
            row = [float(v) for v in row]
            rows.append([tree.leaf_id(row) if node_ids else tree.path(row) for _k, _g, tree in trees])
        return names, rows

    def _shap_trees(self, by_class: bool = False):
        """The trees as TreeSHAP walks them, in genmodel's order (group, then class); with
        ``by_class``, class by class as ``(class, group, tree)``."""
        if by_class:
            f = self.forest
            order = {(g, k): i for i, (g, k) in enumerate(
                (g, k) for g in range(f.n_groups) for k in range(f.n_tpc)
                if f.offsets[k * f.n_groups + g] >= 0)}  # fmt: skip
            trees = self._shap_trees()
            return [(k, g, trees[order[g, k]]) for k in range(f.n_tpc) for g in range(f.n_groups)
                    if (g, k) in order]
        if getattr(self, "_trees_for_shap", None) is None:
            from .tree_shap import ShapTree

            f = self.forest
            trees = []
            for g in range(f.n_groups):
                for k in range(f.n_tpc):
                    at = f.offsets[k * f.n_groups + g]
                    if at < 0:
                        continue
                    name = f"trees/t{k:02d}_{g:03d}"
                    aux = self._shap_file(name + "_aux.bin")
                    if aux is None:
                        raise UnsupportedMojoError("contributions need the trees' aux files "
                                                   "(MOJO 1.10 and later)", self.info.source)
                    trees.append(ShapTree(memoryview(f.trees)[at:], aux, f.nf, f.version,
                                          f.cat_lens, name + ".bin", self.info.source))
            self._trees_for_shap = trees
        return self._trees_for_shap

    def contributions(self, raw) -> list[list[float]]:
        """SHAP contributions per row: one per feature, then ``BiasTerm`` (genmodel's
        ``predictContributions``)."""
        from .tree_shap import ShapForest

        self._check_contributions()
        forest = self.__dict__.get("_shap_forest")
        if forest is None:
            forest = self._shap_forest = ShapForest(self._shap_trees(), self._contributions_bias())
        return self._finish_contributions(forest(raw))

    def _check_contributions(self) -> None:
        if self.n_classes > 2:
            raise UnsupportedMojoError("Predicting contributions for multinomial classification "
                                       "problems is not yet supported.", self.info.source)

    def _contributions_bias(self) -> float:
        return 0.0

    def _finish_contributions(self, rows: list[list[float]]) -> list[list[float]]:
        return rows

    def rows_without_numpy(self) -> bool:
        return _compiled.kernels is not None

    def _tree_plan(self, post: int, link: str = "identity", init_f: float = 0.0):
        """The forest's plan, its sum turned into preds by ``post`` (one tree per group only)."""
        kernels = _compiled.kernels
        forest = self.forest
        if (kernels is None or self.tpc != 1 or forest.n_groups == 0 or link not in _compiled.PLAN_LINKS
                or (self.balance and self.n_classes > 1)):
            return None
        flat = forest.flat
        if flat is None:
            return None
        nodes, tables, roots, code_cols = flat
        return kernels.plan_trees(nodes, tables, roots, code_cols, forest.cat_ub.tobytes(),
                                  self.n_features, forest.n_groups, post, _compiled.PLAN_LINKS[link],
                                  init_f, self.threshold)


class GbmScorer(TreeScorer):
    supports_offset = True

    def __init__(self, info, archive) -> None:
        super().__init__(info, archive)
        self.family = str(info.require("distribution"))
        link = info.get("link_function")
        if link is None:
            link = (
                "logit"
                if self.family in _LOGIT_DISTS
                else "log" if self.family in _LOG_DISTS else "identity"
            )
        self.link = str(link)
        self.init_f = float(info.get("init_f", 0.0))
        self.bernoulli_like = self.family in ("bernoulli", "quasibinomial", "modified_huber")
        if self.family == "ordinal" or self.link in ("ologit", "ologlog", "oprobit"):
            raise UnsupportedMojoError("ordinal GBM is not implemented natively", info.source)

    def _contributions_bias(self) -> float:
        return self.init_f

    def score(self, raw, offset):
        S = self.forest.sums(raw)
        n = raw.shape[0]
        off = 0.0 if offset is None else offset
        K = self.n_classes
        if self.family in ("bernoulli", "quasibinomial", "modified_huber"):
            f = S[:, 0] + self.init_f + off
            P = np.empty((n, 2))
            P[:, 1] = gbm_link_inv(self.link, f)
            P[:, 0] = 1.0 - P[:, 1]
        elif self.family == "multinomial":
            if K == 2:
                s = S[:, 0] + (self.init_f + off)
                P = np.stack([s, -s], axis=1)
            else:
                P = S.copy()
            m = np.max(P, axis=1, keepdims=True)
            with np.errstate(invalid="ignore", over="ignore"):
                P = np.exp(P - m)
            s = np.zeros(n)
            for k in range(P.shape[1]):
                s += P[:, k]
            P /= s[:, None]
        else:
            return gbm_link_inv(self.link, S[:, 0] + self.init_f + off).reshape(n, 1)
        return finish_classification(self, P, raw)

    def row_plan(self):
        if self.bernoulli_like:
            post = _compiled.GBM_BINOMIAL
        elif self.family == "multinomial":
            if self.n_classes != 2:
                return None
            post = _compiled.GBM_MULTINOMIAL2
        else:
            post = _compiled.GBM_REGRESSION
        return self._tree_plan(post, self.link, self.init_f)

    def score_row(self, row, offset):
        S = self.forest.row_sums(row)
        off = 0.0 if offset is None else offset
        if self.bernoulli_like:
            p1 = gbm_link_inv_row(self.link, S[0] + self.init_f + off)
            return finish_classification_row(self, [1.0 - p1, p1], row)
        if self.family == "multinomial":
            if self.n_classes == 2:
                s = S[0] + (self.init_f + off)
                P = [s, -s]
            else:
                P = S
            m = P[0]
            for v in P:  # np.max: NaN wins
                m = _scalar.maximum(m, v)
            e = [_scalar.exp(v - m) for v in P]
            s = _scalar.sum_in_order(e)
            return finish_classification_row(self, [_scalar.div(v, s) for v in e], row)
        return [gbm_link_inv_row(self.link, S[0] + self.init_f + off)]


def finish_classification(scorer: NativeScorer, P: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Balance-class correction, then labels; returns ``[label, p...]`` rows."""
    if scorer.balance:
        P = _labels.correct_probabilities(
            P, scorer.prior, scorer.info.get("model_class_distrib")
        )
    out = np.empty((P.shape[0], P.shape[1] + 1))
    out[:, 1:] = P
    if P.shape[1] == 2:
        out[:, 0] = P[:, 1] >= scorer.threshold
    else:
        out[:, 0] = _labels.multinomial_labels(P, scorer.prior, raw)
    return out


def finish_classification_row(scorer: NativeScorer, P: list[float], row: list[float]) -> list[float]:
    """``finish_classification`` for one row."""
    if scorer.balance:
        P = _labels.correct_row(P, scorer.prior, scorer.info.get("model_class_distrib"))
    if len(P) == 2:
        return [1.0 if P[1] >= scorer.threshold else 0.0, *P]
    return [float(_labels.multinomial_label_row(P, scorer.prior, row)), *P]
