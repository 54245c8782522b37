"""RuleFit: each tree's rules turn a row into one categorical feature per tree (the level of the
last rule the row satisfies, missing when none), which with the row's own columns (model type
"rules_and_linear") feed the MOJO's GLM (``RuleFitMojoModel.score0``).

A condition holds for a missing value only when it includes missing values; a numeric threshold
compares with ``<`` or ``>=``; a categorical one lists level codes. Multinomial models keep one
feature per tree and class, from the rules whose names end with the class label.
"""

from __future__ import annotations

from .._ini import read_info
from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from ._base import NativeScorer

np = numpy_when_used(__name__)

_LINEAR, _RULES_AND_LINEAR, _RULES = 0, 1, 2
_LESS, _GREATER_EQUAL = 0, 1


class _Condition:
    __slots__ = ("column", "numeric", "operator", "threshold", "levels", "na")

    def __init__(self, info, cid: str) -> None:
        g = info.require
        self.column = int(g(f"feature_index_{cid}"))
        self.numeric = int(g(f"type_{cid}")) != 0
        self.operator = int(g(f"operator_{cid}"))
        self.na = bool(g(f"nas_included_{cid}"))
        if self.numeric:
            self.threshold = float(g(f"num_treshold{cid}"))
            self.levels = ()
        else:
            self.threshold = 0.0
            count = int(g(f"cat_treshold_length_{cid}"))
            self.levels = tuple(float(g(f"cat_treshold_length_{i}_{cid}")) for i in range(count))

    def holds(self, v: float) -> bool:
        """``MojoCondition.map`` for one value."""
        if v != v:
            return self.na
        if not self.numeric:
            return v in self.levels
        if self.operator == _LESS:
            return v < self.threshold
        return self.operator == _GREATER_EQUAL and v >= self.threshold

    def mask(self, X: np.ndarray) -> np.ndarray:
        col = X[:, self.column]
        missing = np.isnan(col)
        if not self.numeric:
            hit = np.isin(col, self.levels)
        elif self.operator == _LESS:
            hit = col < self.threshold
        elif self.operator == _GREATER_EQUAL:
            hit = col >= self.threshold
        else:
            hit = np.zeros(len(col), dtype=bool)
        return np.where(missing, self.na, hit & ~missing)


class _Feature:
    """One tree's rules (for one class): the GLM level of the last rule a row satisfies."""

    def __init__(self, rules: list[tuple[list[_Condition], float]]) -> None:
        self.rules = rules
        self.last_first = rules[::-1]

    def value(self, row: list[float]) -> float:
        for conditions, level in self.last_first:  # the last satisfied rule decides
            for c in conditions:
                if not c.holds(row[c.column]):
                    break
            else:
                return level if level >= 0 else float("nan")
        return float("nan")

    def values(self, X: np.ndarray) -> np.ndarray:
        code = np.full(X.shape[0], -1.0)
        for conditions, level in self.rules:
            hit = np.ones(X.shape[0], dtype=bool)
            for c in conditions:
                hit &= c.mask(X)
            code[hit] = level
        return np.where(code >= 0, code, np.nan)


class RuleFitScorer(NativeScorer):
    def __init__(self, info, archive) -> None:
        from . import build_scorer

        super().__init__(info)
        g = info.require
        key = str(g("linear_model"))
        dirs = {str(g(f"submodel_key_{n}")): str(g(f"submodel_dir_{n}"))
                for n in range(int(info.get("submodel_count", 0)))}
        if key not in dirs:
            raise CorruptMojoError(f"RuleFit linear model {key!r} is not listed", info.source)
        sub = archive.sub(dirs[key])
        glm_info = read_info(sub)
        self.glm = build_scorer(sub, glm_info)
        self.model_type = int(g("model_type"))
        depth, ntrees = int(g("depth")), int(g("ntrees"))
        glm_names = list(glm_info.columns)
        self.features: list[_Feature] = []
        if self.model_type != _LINEAR:
            classes = info.response_domain
            multinomial = classes is not None and len(classes) > 2
            for i in range(depth):
                for j in range(ntrees):
                    rules = [self._rule(info, f"{i}_{j}_{k}")
                             for k in range(int(g(f"num_rules_M{i}T{j}")))]
                    if not multinomial:
                        self.features.append(self._feature(rules, None, glm_info, glm_names))
                        continue
                    for k, label in enumerate(classes):
                        mine = [r for r in rules if r[1].endswith(label)]
                        self.features.append(self._feature(mine, k, glm_info, glm_names))
        linear_names = [str(g(f"linear_names_{i}")) for i in range(int(g("linear_names_len")))]
        # ``map``: the i-th input value goes to the GLM column named linear_names[i]
        self.glm_width = glm_info.n_features
        try:
            self.placement = [glm_names.index(linear_names[i]) for i in range(self.glm_width)]
        except (ValueError, IndexError):
            raise CorruptMojoError("RuleFit linear names do not match its GLM",
                                   info.source) from None

    @staticmethod
    def _rule(info, rid: str) -> tuple[list[_Condition], str]:
        count = int(info.require(f"num_conditions_rule_id_{rid}"))
        return ([_Condition(info, f"{c}_{rid}") for c in range(count)],
                str(info.require(f"var_name_rule_id_{rid}")))

    @staticmethod
    def _feature(rules, class_id, glm_info, glm_names) -> _Feature:
        """``getValueByVarName``: a rule's level in the GLM column named by its tree."""
        out = []
        for conditions, name in rules:
            column = name[:name.index("N")] + ("" if class_id is None else f"C{class_id}")
            if column not in glm_names:
                raise UnsupportedMojoError(f"RuleFit rule column {column!r} is not in its GLM",
                                           glm_info.source)
            domain = glm_info.domains[glm_names.index(column)] or []
            out.append((conditions, float(domain.index(name)) if name in domain else -1.0))
        return _Feature(out)

    def _inputs(self, rules: list, row: list) -> list:
        if self.model_type == _RULES:
            return rules
        if self.model_type == _RULES_AND_LINEAR:
            return rules + row
        return row

    def rows_without_numpy(self) -> bool:
        return self.glm.rows_without_numpy()

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        test = self._inputs([f.value(row) for f in self.features], list(row))
        glm_row = [0.0] * self.glm_width
        for i, at in enumerate(self.placement):
            glm_row[at] = test[i]
        return self.glm.score_row(glm_row, None)

    def score(self, raw, offset):
        self._check_offset(offset)
        n = raw.shape[0]
        parts = [f.values(raw).reshape(n, 1) for f in self.features]
        test = np.hstack(self._inputs(parts, [raw]))
        X = np.zeros((n, self.glm_width))
        X[:, self.placement] = test[:, :self.glm_width]
        return self.glm.score(X, None)
