"""StackedEnsemble: base models on remapped rows, optional logit transform, then the metalearner."""

from __future__ import annotations

from array import array

from .._ini import read_info
from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from . import _compiled, _scalar
from ._base import NativeScorer

np = numpy_when_used(__name__)


def _logit_transform(bp: np.ndarray) -> np.ndarray:
    p = np.minimum(1 - 1e-9, np.maximum(bp, 1e-9))
    x = p / (1 - p)
    with np.errstate(divide="ignore"):
        v = np.maximum(-19.0, np.log(x))
    return np.where(x == 0, -19.0, v)


def _logit_row(bp: float) -> float:
    p = _scalar.minimum(1 - 1e-9, _scalar.maximum(bp, 1e-9))
    x = p / (1 - p)
    return -19.0 if x == 0 else _scalar.maximum(-19.0, _scalar.log(x))


class StackedEnsembleScorer(NativeScorer):
    max_version = 1.01

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        from . import build_scorer

        g = info.get
        dirs = {}
        for n in range(int(g("submodel_count", 0))):
            dirs[str(info.require(f"submodel_key_{n}"))] = str(info.require(f"submodel_dir_{n}"))

        def load(key: str):
            if key not in dirs:
                raise CorruptMojoError(f"sub-model {key!r} is not listed", info.source)
            sub = archive.sub(dirs[key])
            return build_scorer(sub, read_info(sub))

        transform = str(g("metalearner_transform", "NONE"))
        if transform not in ("NONE", "Logit"):
            raise UnsupportedMojoError(f"metalearner transform {transform!r}", info.source)
        self.logit = transform == "Logit"
        self.n_base = int(g("base_models_num", 0))
        self.meta = load(str(info.require("metalearner")))
        self.bases: list[tuple[int, NativeScorer, list[int]]] = []
        self._identity = list(range(self.n_features))
        names = info.columns
        nf = self.n_features
        for i in range(self.n_base):
            key = g(f"base_model{i}")
            if key is None:
                continue
            scorer = load(str(key))
            mapping = []
            for f in scorer.info.columns[: scorer.n_features]:
                if f not in names:
                    raise CorruptMojoError(f"base model {key!r} needs column {f!r}", info.source)
                j = names.index(f)
                if j >= nf:
                    raise UnsupportedMojoError(f"base model {key!r} reads non-feature {f!r}", info.source)
                mapping.append(j)
            if mapping == list(range(nf)):
                mapping = self._identity
            self.bases.append((i, scorer, mapping))
        K = self.n_classes
        width = self.n_base * K if K > 2 else self.n_base
        if self.meta.n_features != width:
            raise CorruptMojoError(
                f"metalearner expects {self.meta.n_features} inputs, ensemble gives {width}", info.source
            )

    def score(self, raw, offset):
        self._check_offset(offset)
        n = raw.shape[0]
        K = self.n_classes
        if K > 2:
            bp = np.zeros((n, self.n_base * K))
            for i, scorer, mapping in self.bases:
                bp[:, i * K : (i + 1) * K] = scorer.score(raw[:, mapping], None)[:, 1 : K + 1]
        else:
            bp = np.zeros((n, self.n_base))
            col = 2 if K == 2 else 0
            for i, scorer, mapping in self.bases:
                bp[:, i] = scorer.score(raw[:, mapping], None)[:, col]
        if self.logit and K >= 2:
            bp = _logit_transform(bp)
        return self.meta.score(bp, None)

    def rows_without_numpy(self) -> bool:
        return self.meta.rows_without_numpy() and all(s.rows_without_numpy() for _i, s, _m in self.bases)

    def row_plan(self):
        kernels = _compiled.kernels
        K = self.n_classes
        meta = self.meta.row_plan() if kernels is not None and K <= 2 else None
        if meta is None:
            return None
        bases = []
        for i, scorer, mapping in self.bases:
            plan = scorer.row_plan()
            if plan is None:
                return None
            bases.append((i, plan, None if mapping is self._identity else array("i", mapping).tobytes()))
        return kernels.plan_se(tuple(bases), meta, self.n_features, self.n_base,
                               2 if K == 2 else 0, self.logit and K == 2)

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        K = self.n_classes
        bp = [0.0] * (self.n_base * K if K > 2 else self.n_base)
        for i, scorer, mapping in self.bases:
            # a base model that reads the ensemble's columns in order takes the row as it is
            # (score_row never changes the row it is given)
            preds = scorer.score_row(row if mapping is self._identity else [row[j] for j in mapping],
                                     None)
            if K > 2:
                bp[i * K : (i + 1) * K] = preds[1 : K + 1]
            else:
                bp[i] = preds[2 if K == 2 else 0]
        if self.logit and K >= 2:
            bp = [_logit_row(v) for v in bp]
        return self.meta.score_row(bp, None)
