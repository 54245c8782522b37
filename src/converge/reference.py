"""Reference predictions for tests and benchmarks: h2o-genmodel run directly, nothing of ours between.

Every expected prediction the test suite and the benchmarks compare converge with comes from here
(or from H2O's own ``model.predict``). A row reaches genmodel the way a Java caller hands it over:
a ``RowData`` with a ``String`` or a ``Double`` per column (JSON has one number type, so Python
ints and floats are both ``Double``), missing values left out as ``PredictCsv`` leaves out NA
cells; genmodel's own ``EasyPredictModelWrapper`` parses numbers, looks up levels, and refuses
what it cannot take. A value with no plain Java counterpart (a boolean, a list) is handed over
boxed as JPype boxes it, so genmodel's own type check refuses it. converge's scorer, row
normalisation and genmodel backend are not used; the JVM start-up (class path, heap) is shared.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = ["GenmodelRefused", "GenmodelReference", "genmodel_predictions"]


class GenmodelRefused(Exception):
    """genmodel refused a row (its exception's message, which names the column)."""


class GenmodelReference:
    """One MOJO loaded by genmodel; ``predict`` returns rows shaped like H2O's predict frame:
    ``predict`` (the label, or the value for regression) and one probability column per class,
    named as genmodel names them (``columns``: class label -> column)."""

    def __init__(
        self,
        mojo: bytes | str | os.PathLike,
        *,
        unknown_levels_to_na: bool = True,
        invalid_numbers_to_na: bool = True,
    ) -> None:
        from converge.mojo.backends.genmodel import _jvm

        jpype = self._jpype = _jvm()
        factory = jpype.JClass("hex.genmodel.MojoReaderBackendFactory")
        if isinstance(mojo, bytes | bytearray):
            stream = jpype.JClass("java.io.ByteArrayInputStream")(bytes(mojo))
            caching = jpype.JClass("hex.genmodel.MojoReaderBackendFactory$CachingStrategy").MEMORY
            reader = factory.createReaderBackend(stream, caching)
        else:
            reader = factory.createReaderBackend(jpype.JString(os.fspath(Path(mojo))))
        self.model = jpype.JClass("hex.genmodel.ModelMojoReader").readFrom(reader)
        config = (
            jpype.JClass("hex.genmodel.easy.EasyPredictModelWrapper$Config")()
            .setModel(self.model)
            .setConvertUnknownCategoricalLevelsToNa(unknown_levels_to_na)
            .setConvertInvalidNumbersToNa(invalid_numbers_to_na)
        )
        self.wrapper = jpype.JClass("hex.genmodel.easy.EasyPredictModelWrapper")(config)
        self.category = str(self.model.getModelCategory().toString())
        supervised = bool(self.model.isSupervised())
        domain = self.model.getDomainValues(self.model.getResponseIdx()) if supervised else None
        self.classes = None if domain is None else [str(c) for c in domain]
        # the predict frame's column per class, named by genmodel ("p0" for a level "0")
        names = [str(n) for n in self.model.getOutputNames()][1:] if supervised else []
        self.columns = None if domain is None else dict(zip(self.classes, names, strict=True))
        offset = self.model.getOffsetName() if hasattr(self.model, "getOffsetName") else None
        self.offset_column = None if offset is None else str(offset)
        self._RowData = jpype.JClass("hex.genmodel.easy.RowData")
        self._Double = jpype.JClass("java.lang.Double")

    def is_categorical(self, column: str) -> bool:
        """Whether genmodel takes ``column`` as levels (strings) rather than numbers."""
        index = self.model.getColIdx(column)
        return index >= 0 and self.model.getDomainValues(index) is not None

    def _row(self, record: dict[str, Any]) -> Any:
        jpype, row = self._jpype, self._RowData()
        for name, value in record.items():
            if value is None or name == self.offset_column:
                continue
            if isinstance(value, float) and math.isnan(value):
                continue
            if isinstance(value, str):
                boxed = jpype.JString(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                boxed = self._Double(float(value))
            else:
                try:
                    boxed = jpype.JObject(value)
                except TypeError as exc:
                    raise GenmodelRefused(f"column {name}: no Java value for {value!r}") from exc
            row.put(jpype.JString(str(name)), boxed)
        return row

    def _offset(self, record: dict[str, Any]) -> float:
        value = record.get(self.offset_column) if self.offset_column else None
        return 0.0 if value is None else float(value)

    def predict_one(self, record: dict[str, Any]) -> dict[str, Any]:
        row, offset = self._row(record), self._offset(record)
        try:
            if self.category == "Regression":
                return {"predict": float(self.wrapper.predictRegression(row, offset).value)}
            if self.category == "Binomial":
                p = self.wrapper.predictBinomial(row, offset)
            elif self.category == "Multinomial":
                p = self.wrapper.predictMultinomial(row, offset)
            else:
                return self._other_outputs(row)
        except self._jpype.JException as exc:  # PredictException, or e.g. a NaN probability
            raise GenmodelRefused(str(exc.getMessage())) from exc
        probabilities = [float(x) for x in p.classProbabilities]
        return {"predict": str(p.label), **dict(zip(self.columns.values(), probabilities, strict=True))}

    def _other_outputs(self, row: Any) -> dict[str, Any]:
        """PredictCsv's columns for a clustering, anomaly, dimension-reduction or autoencoder model."""
        w = self.wrapper
        if self.category == "Clustering":
            values = [float(w.predictClustering(row).cluster)]
        elif self.category == "AnomalyDetection":
            values = list(w.predictAnomalyDetection(row).toPreds())
        elif self.category == "DimReduction":
            values = list(w.predictDimReduction(row).dimensions)
        elif self.category == "AutoEncoder":
            values = list(w.predictAutoEncoder(row).reconstructed)
        else:
            raise GenmodelRefused(f"no reference for a {self.category} model")
        names = ["cluster"] if self.category == "Clustering" else self.model.getOutputNames()
        return dict(zip((str(n) for n in names), (float(v) for v in values), strict=True))

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.predict_one(r) for r in records]

    def raw(self, records: list[dict[str, Any]]) -> Any:
        """Rows as a matrix: the label's class index then the probabilities, or the value."""
        import numpy as np

        out = []
        for answer in self.predict(records):
            if self.classes is None:
                out.append([answer["predict"]])
            else:
                label = float(self.classes.index(answer["predict"]))
                out.append([label, *(answer[c] for c in self.columns.values())])
        return np.array(out, dtype=np.float64)

    def score0(self, X: Any, offset: Any = None) -> Any:
        """genmodel's ``score0`` on rows already encoded as doubles (level codes for categoricals):
        the label's class index then the probabilities, or the value."""
        import numpy as np

        jpype = self._jpype
        JDouble = jpype.JArray(jpype.JDouble)
        width = 1 if self.classes is None else 1 + len(self.classes)
        out = np.empty((len(X), width))
        for r, row in enumerate(X):
            preds = JDouble(int(self.model.getPredsSize()))
            o = 0.0 if offset is None else float(offset[r])
            try:
                if o != 0.0 or self.model.requiresOffset():
                    res = self.model.score0(JDouble(list(map(float, row))), o, preds)
                else:
                    res = self.model.score0(JDouble(list(map(float, row))), preds)
            except jpype.JException as exc:
                raise GenmodelRefused(str(exc)) from exc
            out[r] = np.asarray(res)[:width]
        return out


def genmodel_predictions(mojo: bytes | str | os.PathLike, rows: list[dict[str, Any]]) -> list:
    """genmodel's answers for ``rows`` (unknown levels and unparsable numbers as missing, as
    ``h2o.mojo_predict_pandas`` and converge's defaults treat them)."""
    return GenmodelReference(mojo).predict(rows)
