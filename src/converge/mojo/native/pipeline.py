"""MOJO pipelines (genmodel's ``BuildPipeline``: ``MojoPipeline``): sub-models score the row and
their chosen outputs become input columns of the main model, which gives the answer."""

from __future__ import annotations

from .._ini import read_info
from .._numpy import numpy_when_used
from ..errors import CorruptMojoError, UnsupportedMojoError
from ._base import NativeScorer

np = numpy_when_used(__name__)


class MojoPipelineScorer(NativeScorer):
    max_version = 1.0

    def __init__(self, info, archive) -> None:
        super().__init__(info)
        from . import build_scorer

        g = info.get
        dirs = {str(info.require(f"submodel_key_{i}")): str(info.require(f"submodel_dir_{i}"))
                for i in range(int(g("submodel_count", 0)))}

        def load(alias: str) -> NativeScorer:
            if alias not in dirs:
                raise CorruptMojoError(f"pipeline model {alias!r} is not listed", info.source)
            sub = archive.sub(dirs[alias])
            return build_scorer(sub, read_info(sub))

        main_alias = str(info.require("main_model"))
        self.main = load(main_alias)
        generated = [(str(info.require(f"generated_column_name_{i}")),
                      str(info.require(f"generated_column_model_{i}")),
                      int(g(f"generated_column_index_{i}", 0)))
                     for i in range(int(g("generated_column_count", 0)))]
        main_features = self.main.info.columns[: self.main.n_features]
        made = {name for name, _alias, _index in generated}
        #: the main model's columns taken from the row: (main column, row column)
        self.passed = [(j, self._column(f, f"the main model's input {f!r}"))
                       for j, f in enumerate(main_features) if f not in made]
        #: per sub-model: its scorer, its columns in the row, and (its output, main column) pairs
        self.subs = []
        for alias in dirs:
            if alias == main_alias:
                continue
            scorer = load(alias)
            mapping = [self._column(f, f"{alias}'s input {f!r}")
                       for f in scorer.info.columns[: scorer.n_features]]
            outputs = [(index, self._main_column(main_features, name))
                       for name, model, index in generated if model == alias]
            self.subs.append((scorer, mapping, outputs))

    def _column(self, name: str, what: str) -> int:
        columns = self.info.columns
        if name not in columns:
            raise CorruptMojoError(f"the pipeline has no input column for {what}", self.info.source)
        at = columns.index(name)
        if at >= self.n_features:
            raise UnsupportedMojoError(f"{what} is the pipeline's response", self.info.source)
        return at

    def _main_column(self, main_features: list[str], name: str) -> int:
        if name not in main_features:
            raise CorruptMojoError(f"the main model has no input {name!r}", self.info.source)
        return main_features.index(name)

    def output_columns(self):
        return self.main.output_columns()

    def score(self, raw, offset):
        self._check_offset(offset)
        main = np.zeros((raw.shape[0], self.main.n_features))
        for j, i in self.passed:
            main[:, j] = raw[:, i]
        for scorer, mapping, outputs in self.subs:
            preds = scorer.score(raw[:, mapping], None)
            for index, j in outputs:
                main[:, j] = preds[:, index]
        return self.main.score(main, None)

    def rows_without_numpy(self) -> bool:
        return self.main.rows_without_numpy() and all(s.rows_without_numpy() for s, _m, _o in self.subs)

    def score_row(self, row, offset):
        self._check_row_offset(offset)
        main = [0.0] * self.main.n_features
        for j, i in self.passed:
            main[j] = row[i]
        for scorer, mapping, outputs in self.subs:
            preds = scorer.score_row([row[i] for i in mapping], None)
            for index, j in outputs:
                main[j] = preds[index]
        return self.main.score_row(main, None)
