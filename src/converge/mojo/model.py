"""``Model``: a loaded MOJO with its metadata, scoring through one backend."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from ._archive import MojoArchive
from ._encodings import EncodingBackend, encoding_of, original_schema
from ._ini import MojoInfo, read_info
from ._numpy import numpy_when_used
from ._rows import RowSchema
from .backends import NAMES, Backend
from .errors import BackendUnavailableError, InvalidInputError, MojoError, UnsupportedMojoError

np = numpy_when_used(__name__)

_CLASSIFICATION = ("Binomial", "Multinomial", "Ordinal")
_FEW_ROWS = 8


def _is_java_int(s: str) -> bool:
    """``Integer.valueOf(s)`` succeeds: optional sign, digits, within 32 bits."""
    if not re.fullmatch(r"[+-]?\d+", s):
        return False
    return -(2**31) <= int(s) < 2**31


def _output_names(category: str, classes: list[str] | None) -> list[str]:
    """``GenModel.getOutputNames``: integer class labels become ``p0``, ``p1``..."""
    if category not in _CLASSIFICATION:
        return ["predict"]
    return ["predict"] + [("p" + c) if _is_java_int(c) else c for c in classes or []]


class Model:
    """A MOJO ready to score. Build it with :func:`converge.mojo.load_mojo`."""

    def __init__(self, info: MojoInfo, schema: RowSchema, backend: Backend) -> None:
        self._info = info
        self._schema = schema
        self.backend: Backend = backend
        cat = str(info.get("category", ""))
        self.category: str = cat
        classes = info.response_domain if cat in _CLASSIFICATION else None
        if cat == "Binomial" and classes is None:
            classes = ["0", "1"]  # quasibinomial: genmodel's fallback domain
        self.classes: list[str] | None = list(classes) if classes is not None else None
        columns = backend.output_columns()
        #: other layouts (clusters, anomaly scores, components...): every column is a number
        self._plain_columns = columns is not None
        self.output_names: list[str] = list(columns) if columns is not None else _output_names(cat, self.classes)
        self._probability_names = tuple(self.output_names[1:])
        # a binomial's labels, for the compiled one-record path (None: a regression or more classes)
        self._label_pair = tuple(self.classes) if self.classes is not None and len(self.classes) == 2 else None

    # -- metadata -----------------------------------------------------------------------------
    @property
    def algorithm(self) -> str:
        """Short algorithm name as in ``model.ini`` ``algo`` (gbm, drf, glm, xgboost, ...)."""
        return self._info.algo

    @property
    def mojo_version(self) -> float:
        return self._info.mojo_version

    @property
    def h2o_version(self) -> str:
        return str(self._info.get("h2o_version", ""))

    @property
    def feature_names(self) -> list[str]:
        return list(self._schema.feature_names)

    @property
    def feature_types(self) -> dict[str, str]:
        """``enum`` or ``numeric`` per feature."""
        return {
            n: ("enum" if d is not None else "numeric")
            for n, d in zip(self._schema.feature_names, self._schema.domains)
        }

    @property
    def domains(self) -> dict[str, list[str] | None]:
        return {n: (list(d) if d is not None else None)
                for n, d in zip(self._schema.feature_names, self._schema.domains)}

    @property
    def response_name(self) -> str | None:
        return self._info.columns[-1] if self._info.supervised and self._info.columns else None

    @property
    def offset_column(self) -> str | None:
        return self._schema.offset_column

    @property
    def n_classes(self) -> int:
        return self._info.n_classes

    @property
    def info(self) -> dict:
        """The raw ``[info]`` section of ``model.ini``."""
        return dict(self._info.info)

    def __repr__(self) -> str:
        return (f"Model(algorithm={self.algorithm!r}, category={self.category!r}, "
                f"features={len(self.feature_names)}, backend={self.backend.name!r})")

    # -- scoring ------------------------------------------------------------------------------
    def _offset(self, offset, n: int) -> np.ndarray | None:
        if offset is None:
            return None
        arr = np.asarray(offset, dtype=np.float64)
        if arr.ndim == 0:
            return np.full(n, float(arr))
        if arr.shape != (n,):
            raise InvalidInputError(f"offset has shape {arr.shape}, expected ({n},)")
        return np.where(np.isnan(arr), 0.0, arr)

    def predict_raw(self, data, offset=None) -> np.ndarray:
        """genmodel's ``preds`` per row: ``[label_index, p_0..]`` (classifiers) or ``[value]``."""
        if type(data) is list:
            return self.backend.preds_records(data, self._offset(offset, len(data)))
        if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
            records = list(data)
            return self.backend.preds_records(records, self._offset(offset, len(records)))
        if isinstance(data, Mapping):
            return self.backend.preds_records([data], self._offset(offset, 1))
        if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a DataFrame (duck-typed)
            n = len(data)
            wanted = set(self._schema.index)
            if self.offset_column:
                wanted.add(self.offset_column)
            cols = {}
            for c in data.columns:
                if isinstance(c, str) and c in wanted:
                    s = data[c]
                    if s.ndim != 1:
                        raise InvalidInputError(f"duplicate column {c!r} in the input frame")
                    cols[c] = _series_values(s)
            return self.backend.preds_columns(cols, n, self._offset(offset, n))
        raise InvalidInputError(
            f"cannot score a {type(data).__name__}; pass a DataFrame or a list of dicts"
        )

    def predict_records(self, records, offset=None) -> list[dict]:
        """Score dict rows without pandas; returns one dict per row keyed by output names."""
        if type(records) is not list:
            records = [records] if isinstance(records, Mapping) else list(records)
        if len(records) == 1 and offset is None:
            if self.classes is None or self._label_pair is not None:
                out = self.backend.record_output(records[0], self._label_pair, self._probability_names)
                if out is not None:  # one compiled call: encode, score, output dict
                    return [out]
            row = self.backend.preds_row(records[0])  # no NumPy: a cold start's first answer
            if row is not None:
                return [self._row_record(row)]
        P = self.predict_raw(records, offset)
        return self._to_records(P)

    @property
    def contribution_names(self) -> list[str]:
        """The columns of :meth:`contributions`: each feature (for XGBoost each one-hot input, as
        genmodel names them), then ``BiasTerm``."""
        return self.backend.contribution_names() or [*self.feature_names, "BiasTerm"]

    def contributions(self, records) -> list[dict[str, float]]:
        """SHAP contributions per dict row (GBM, DRF, XRT, XGBoost; binomial or regression), keyed by
        :attr:`contribution_names`, exact against genmodel's ``predictContributions``: the
        link-space answer is their sum."""
        if type(records) is not list:
            records = [records] if isinstance(records, Mapping) else list(records)
        names = self.contribution_names
        return [dict(zip(names, row, strict=True)) for row in self.backend.contributions(records)]

    def leaf_assignment(self, records, node_ids: bool = False) -> list[dict[str, str | int | None]]:
        """Each tree's path to the leaf a dict row lands in (``"LRL"``), or with ``node_ids``
        H2O's id of that leaf (genmodel's ``Node_ID`` assignment), keyed by tree as
        genmodel's ``PredictCsv --leafNodeAssignment`` names them (GBM, DRF, XRT)."""
        if type(records) is not list:
            records = [records] if isinstance(records, Mapping) else list(records)
        names, rows = self.backend.leaf_assignment(records, node_ids=node_ids)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def reconstruction(self, records) -> list[dict[str, float]]:
        """Per dict row, a GLRM's reconstruction from the row's factor and the archetypes
        (``reconstr_<column>``: a categorical's level index, numbers in the input's scale), as
        genmodel's ``PredictCsv --glrmReconstruct``; the row counter advances as when scoring."""
        if type(records) is not list:
            records = [records] if isinstance(records, Mapping) else list(records)
        names, rows = self.backend.reconstruction(records)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def calibrated_probabilities(self, records) -> list[dict[str, float]]:
        """Per dict row, the class probabilities of a binomial GBM or DRF trained with
        ``calibrate_model`` (Platt or isotonic), keyed by class, as genmodel's
        ``calibratedClassProbabilities``; the answer itself stays uncalibrated, as in genmodel."""
        if type(records) is not list:
            records = [records] if isinstance(records, Mapping) else list(records)
        classes = self.classes or []
        return [dict(zip(classes, row, strict=True)) for row in self.backend.calibrated_probabilities(records)]

    def leaf_node_ids(self, records) -> list[dict[str, int]]:
        """:meth:`leaf_assignment` as H2O's leaf ids (``node_ids=True``)."""
        return self.leaf_assignment(records, node_ids=True)

    def predict_numpy(self, X, offset=None) -> np.ndarray:
        """Fast path: ``X`` is float64 in ``feature_names`` order, categoricals as level codes.

        Returns genmodel's ``preds`` matrix (see :meth:`predict_raw`).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        return self.backend.preds_numpy(X, self._offset(offset, X.shape[0]))

    def predict(self, data, offset=None):
        """Score a DataFrame or a list of dicts; returns a DataFrame with genmodel's output names."""
        import pandas as pd

        P = self.predict_raw(data, offset)
        index = data.index if hasattr(data, "index") and hasattr(data, "columns") else None
        if self._plain_columns:
            return pd.DataFrame({name: P[:, j] for j, name in enumerate(self.output_names)}, index=index)
        if self.classes is None:
            return pd.DataFrame({"predict": P[:, 0]}, index=index)
        cols = {"predict": self._labels(P)}
        for j, name in enumerate(self.output_names[1:]):
            cols[name] = P[:, j + 1]
        return pd.DataFrame(cols, index=index)

    def _labels(self, P: np.ndarray) -> list[str]:
        idx = P[:, 0]
        if len(idx) <= _FEW_ROWS:  # plain Python beats NumPy's per-call cost on a few rows
            return self._labels_of(idx.tolist())
        classes = self.classes or []
        bad = idx[~((idx >= 0) & (idx < len(classes)))][:1].tolist()  # NaN fails both
        if bad:
            self._invalid_class_index(bad[0])
        return np.asarray(classes, dtype=object)[idx.astype(np.intp)].tolist()

    def _labels_of(self, values: list[float]) -> list[str]:
        """Class labels for class indices given as Python floats."""
        classes = self.classes or []
        for v in values:
            if not 0 <= v < len(classes):  # NaN fails both
                self._invalid_class_index(v)
        return [classes[int(v)] for v in values]

    def _invalid_class_index(self, v: float):
        raise MojoError(f"model returned an invalid class index {v!r}", self._info.source)

    def _row_record(self, row: list[float]) -> dict:
        if self._plain_columns:
            return dict(zip(self.output_names, row))
        classes = self.classes
        if classes is None:
            return {"predict": row[0]}
        v = row[0]
        if not 0 <= v < len(classes):  # NaN fails both
            self._invalid_class_index(v)
        out = {"predict": classes[int(v)]}
        out.update(zip(self._probability_names, row[1:]))
        return out

    def _to_records(self, P: np.ndarray) -> list[dict]:
        if self._plain_columns:
            names = self.output_names
            return [dict(zip(names, r)) for r in P.tolist()]
        if self.classes is None:
            return [{"predict": v} for v in P[:, 0].tolist()]
        labels = self._labels(P)
        names = self.output_names[1:]
        if len(names) == 2:
            a, b = names
            return [{"predict": lab, a: p, b: q}
                    for lab, p, q in zip(labels, P[:, 1].tolist(), P[:, 2].tolist())]
        rows = P[:, 1:].tolist()
        return [dict(zip(names, r), predict=lab) for lab, r in zip(labels, rows)]

    def close(self) -> None:
        self.backend.close()


def _series_values(s):
    """A pandas Series as a NumPy array; nullable/extension dtypes become float or object."""
    dt = s.dtype
    kind = getattr(dt, "kind", "O")
    if kind in "fiu" and not hasattr(dt, "na_value"):
        return s.to_numpy()
    if kind == "M" and not hasattr(dt, "na_value"):
        return s.to_numpy()
    if hasattr(dt, "na_value") and kind in "fiu":  # Int64/Float64 with pd.NA
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind == "M":
        return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy() if getattr(dt, "tz", None) else s.to_numpy()
    return s.to_numpy(dtype=object)


def load_mojo(path_or_bytes, backend: str = "auto", *, unknown_levels: str = "na",
              invalid_numbers: str = "na") -> Model:
    """Load a MOJO (zip path, unpacked folder or zip bytes) and pick a scoring backend.

    ``backend="auto"`` uses ``native`` when it supports the model, else ``genmodel``.
    ``unknown_levels`` / ``invalid_numbers``: ``"na"`` (PredictCsv's behaviour for unseen levels)
    or ``"raise"``.
    """
    if backend not in NAMES + ("auto",):
        raise ValueError(f"backend must be one of {NAMES + ('auto',)}, got {backend!r}")
    if backend == "daimojo":
        from .backends.daimojo import load_daimojo

        return load_daimojo(path_or_bytes)
    archive = MojoArchive.open(path_or_bytes)
    info = read_info(archive)
    category = str(info.get("category", ""))
    classic = category in _CLASSIFICATION + ("Regression",)
    if category == "WordEmbedding":
        from .native.word2vec import with_vocabulary

        info = with_vocabulary(archive, info)
    if info.algo == "gam":
        from .native.gam import with_gam_sources

        info = with_gam_sources(archive, info)
    offset_col = info.get("offset_column")
    schema = RowSchema(
        info.columns, info.domains, info.n_features,
        str(offset_col) if offset_col else None, info.source,
        unknown_levels=unknown_levels, invalid_numbers=invalid_numbers,
    )
    native_refusal = None
    if not classic and backend == "genmodel":
        # the genmodel backend returns the classic layout only
        raise UnsupportedMojoError(f"model category {category!r} is not supported by the genmodel "
                                   "backend", info.source)
    if backend in ("native", "auto"):
        try:
            from .backends.native import NativeBackend

            if encoding_of(info):
                return _encoded_model(archive, info, schema, unknown_levels=unknown_levels,
                                      invalid_numbers=invalid_numbers)
            return Model(info, schema, NativeBackend(archive, info, schema))
        except UnsupportedMojoError as e:
            if backend == "native" or not classic:
                raise
            native_refusal = e
    from .backends.genmodel import GenmodelBackend

    if encoding_of(info):  # genmodel's wrapper takes the original columns and encodes them itself
        schema = original_schema(archive, info, unknown_levels=unknown_levels,
                                 invalid_numbers=invalid_numbers)
    try:
        return Model(info, schema, GenmodelBackend(path_or_bytes, archive, info, schema))
    except BackendUnavailableError as e:
        if native_refusal is None:
            raise
        raise UnsupportedMojoError(
            f"{native_refusal.reason}; the genmodel fallback is unavailable: {e.reason}", info.source
        ) from e


def _encoded_model(archive, info: MojoInfo, encoded: RowSchema, **options) -> Model:
    """A model trained on encoded categoricals: the native scorer reads the encoded columns, the
    caller gives the original ones (``_encodings``)."""
    from .backends.native import NativeBackend

    plain = dataclasses.replace(info, info={**info.info, "_genmodel_encoding": "AUTO"})
    original = original_schema(archive, info, **options)
    inner = NativeBackend(archive, plain, encoded)
    return Model(info, original, EncodingBackend(inner, original, info))

