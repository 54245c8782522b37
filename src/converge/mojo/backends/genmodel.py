"""The reference backend: h2o-genmodel in this process through JPype.

genmodel ships inside the ``h2o`` wheel (``h2o/backend/bin/h2o.jar``); ``CONVERGE_H2O_JAR`` may
point at that jar or at a standalone ``h2o-genmodel.jar``. Rows go through
``EasyPredictModelWrapper`` configured like ``PredictCsv``, so this backend is the yardstick the
native one is tested against, and the fallback for models the native one does not support.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import math
import numbers
import os
import threading
from pathlib import Path

import numpy as np

from .._archive import MojoArchive
from .._ini import MojoInfo
from .._rows import RowSchema, epoch_millis
from ..errors import BackendUnavailableError, InvalidInputError, MojoError, UnsupportedMojoError
from . import Backend

_LOCK = threading.Lock()
_JVM_HEAP = os.environ.get("CONVERGE_GENMODEL_HEAP", "512m")


def find_h2o_jar() -> Path:
    """``$CONVERGE_H2O_JAR``, else the jar inside the installed ``h2o`` wheel (not imported)."""
    explicit = os.environ.get("CONVERGE_H2O_JAR")
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise BackendUnavailableError(f"CONVERGE_H2O_JAR points at a missing file {p}")
        return p
    spec = importlib.util.find_spec("h2o")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            "genmodel backend needs h2o.jar: install the 'h2o' wheel or set CONVERGE_H2O_JAR"
        )
    for loc in spec.submodule_search_locations:
        jar = Path(loc) / "backend" / "bin" / "h2o.jar"
        if jar.is_file():
            return jar
    raise BackendUnavailableError("the installed h2o wheel has no backend/bin/h2o.jar")


def _jvm():
    """Start (once) a JVM with genmodel on the class path and return the jpype module."""
    try:
        import jpype
    except ImportError as e:
        raise BackendUnavailableError("genmodel backend needs the 'jpype1' package") from e
    with _LOCK:
        if not jpype.isJVMStarted():
            jar = find_h2o_jar()
            java_home = os.environ.get("H2O_JAVA_HOME") or os.environ.get("JAVA_HOME")
            try:
                jvm_path = jpype.getDefaultJVMPath() if not java_home else _jvm_lib(java_home)
                jpype.startJVM(jvm_path, f"-Xmx{_JVM_HEAP}", "-Djava.awt.headless=true",
                               classpath=[str(jar)], convertStrings=False)
            except (OSError, RuntimeError, jpype.JVMNotFoundException) as e:
                raise BackendUnavailableError(f"cannot start a JVM: {e}") from e
        try:
            jpype.JClass("hex.genmodel.MojoModel")
        except Exception as e:  # the JVM was started elsewhere without genmodel on its class path
            raise BackendUnavailableError(f"genmodel classes are not on the JVM class path: {e}") from e
    return jpype


def _jvm_lib(java_home: str) -> str:
    for rel in ("lib/server/libjvm.so", "jre/lib/amd64/server/libjvm.so", "lib/server/libjvm.dylib"):
        p = Path(java_home) / rel
        if p.is_file():
            return str(p)
    raise BackendUnavailableError(f"no libjvm under {java_home}")


class GenmodelBackend(Backend):
    name = "genmodel"

    def __init__(self, path_or_bytes, archive: MojoArchive, info: MojoInfo, schema: RowSchema) -> None:
        jpype = _jvm()
        self._jpype = jpype
        self.schema = schema
        self.info = info
        JString = jpype.JClass("java.lang.String")
        self._source = path_or_bytes
        try:
            self.model = self._read()
        except jpype.JException as e:
            raise UnsupportedMojoError(f"genmodel cannot load it: {e}", info.source) from e
        self.wrapper = self._wrapper(self.model)
        self._explainers: dict[str, object] = {}
        self._RowData = jpype.JClass("hex.genmodel.easy.RowData")
        self._Double = jpype.JClass("java.lang.Double")
        self._Boolean = jpype.JClass("java.lang.Boolean")
        self._String = JString
        self._PredictException = jpype.JClass("hex.genmodel.easy.exception.PredictException")
        self._requires_offset = bool(self.model.requiresOffset())
        cat = str(self.model.getModelCategory().toString())
        self._width = 1 + int(self.model.getNumResponseClasses()) if cat in ("Binomial", "Multinomial", "Ordinal") else 1
        self._preds_size = int(self.model.getPredsSize())

    def _read(self, metadata: bool = False):
        """genmodel's ``ModelMojoReader.readFrom`` over the MOJO's path or bytes (``metadata``:
        also the model details DRF's contributions need)."""
        jpype, source = self._jpype, self._source
        Factory = jpype.JClass("hex.genmodel.MojoReaderBackendFactory")
        if isinstance(source, (bytes, bytearray, memoryview)):
            stream = jpype.JClass("java.io.ByteArrayInputStream")(bytes(source))
            strategy = jpype.JClass("hex.genmodel.MojoReaderBackendFactory$CachingStrategy").MEMORY
            backend = Factory.createReaderBackend(stream, strategy)
        else:
            backend = Factory.createReaderBackend(jpype.JClass("java.lang.String")(os.fspath(source)))
        return jpype.JClass("hex.genmodel.ModelMojoReader").readFrom(backend, metadata)

    def _wrapper(self, model, **enable):
        """An ``EasyPredictModelWrapper`` with this backend's input options (``enable``: its
        ``setEnable*`` switches, e.g. ``Contributions=True``)."""
        Config = self._jpype.JClass("hex.genmodel.easy.EasyPredictModelWrapper$Config")
        cfg = (Config().setModel(model)
               .setConvertUnknownCategoricalLevelsToNa(self.schema.unknown_levels == "na")
               .setConvertInvalidNumbersToNa(self.schema.invalid_numbers == "na"))
        for switch, on in enable.items():
            cfg = getattr(cfg, f"setEnable{switch}")(on)
        return self._jpype.JClass("hex.genmodel.easy.EasyPredictModelWrapper")(cfg)

    def _explainer(self, what: str):
        """A wrapper with ``Contributions`` or ``LeafAssignment`` on, made on first use;
        genmodel's refusal for models without them is an UnsupportedMojoError."""
        wrapper = self._explainers.get(what)
        if wrapper is None:
            model = self.model
            try:
                if what == "Contributions":  # DRF's contributions read the variable importances
                    model = self._read(metadata=True)
                wrapper = self._wrapper(model, **{what: True})
            except self._jpype.JException as e:
                raise UnsupportedMojoError(str(e.getMessage()), self.info.source) from e
            self._explainers[what] = wrapper
        return wrapper

    def contribution_names(self):
        return [str(n) for n in self._explainer("Contributions").getContributionNames()]

    def contributions(self, records):
        wrapper = self._explainer("Contributions")
        return [[float(v) for v in self._run(wrapper.predictContributions, self._row(rec))]
                for rec in records]

    def calibrated_probabilities(self, records):
        out = []
        for rec in records:
            p = self._run(self.wrapper.predictBinomial, self._row(rec)).calibratedClassProbabilities
            if p is None:
                raise UnsupportedMojoError("calibrated probabilities: genmodel has none for this model",
                                           self.info.source)
            out.append([float(v) for v in p])
        return out

    def leaf_assignment(self, records, node_ids=False):
        wrapper = self._explainer("LeafAssignment")
        names = [str(n) for n in self.model.getDecisionPathNames()]
        rows = []
        for rec in records:
            leaves = self._run(wrapper.leafNodeAssignmentExtended, self._row(rec))
            rows.append([int(v) for v in leaves._nodeIds] if node_ids else [str(v) for v in leaves._paths])
        return names, rows

    def _row(self, rec: dict):
        """A ``RowData`` of the values as they came: genmodel parses numeric strings, looks up
        levels and refuses wrong types itself. Only what Java has no value for is converted
        here: missing values are left out, ints become ``Double``, an integral number for a
        categorical column names the level of its decimal text, date-times become epoch ms."""
        row = self._RowData()
        index = self.schema.index
        for name, v in rec.items():
            if not isinstance(name, str):
                continue
            i = index.get(name)
            if i is None:
                continue  # genmodel ignores unknown columns too; skip the conversion cost
            v = self._java(name, i, v)
            if v is not None:
                row.put(self._String(name), v)
        return row

    def _java(self, name: str, i: int, v):
        if v is None or type(v).__name__ in ("NAType", "NaTType"):
            return None
        if isinstance(v, str):
            return self._String(v)
        if isinstance(v, bool | np.bool_):
            return self._Boolean(bool(v))  # genmodel refuses it, naming the column
        categorical = self.schema.domains[i] is not None
        if isinstance(v, numbers.Real):
            f = float(v)
            if math.isnan(f):
                return None
            if categorical and f.is_integer():
                return self._String(str(int(f)))
            return self._Double(f)  # for a categorical column genmodel refuses it
        if isinstance(v, _dt.date | np.datetime64):
            f = epoch_millis(v)
            return None if math.isnan(f) else self._Double(f)
        raise InvalidInputError(
            f"column {name!r}: unsupported value type {type(v).__name__}", self.info.source
        )

    def _run(self, fn, *args):
        try:
            return fn(*args)
        except self._PredictException as e:
            raise InvalidInputError(str(e.getMessage()), self.info.source) from e
        except self._jpype.JException as e:
            raise MojoError(f"genmodel failed: {e}", self.info.source) from e

    def preds_records(self, records, offset):
        n = len(records)
        out = np.empty((n, self._width))
        off_col = self.schema.offset_column
        for r, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise InvalidInputError(f"row {r} is a {type(rec).__name__}, not a mapping", self.info.source)
            if offset is not None:
                o = float(offset[r])
            elif off_col is not None and off_col in rec:
                o = self.schema.offset_value(rec[off_col])
            else:
                o = 0.0
            row = self._row(rec)
            out[r] = np.asarray(self._run(self.wrapper.predictRaw, row, o))[: self._width]
        return out

    def preds_columns(self, cols, n, offset):
        names = list(cols)
        lists = [list(np.asarray(cols[c], dtype=object)) if not isinstance(cols[c], list) else cols[c]
                 for c in names]
        records = [{c: _py(lists[j][r]) for j, c in enumerate(names)} for r in range(n)]
        return self.preds_records(records, offset)

    def preds_numpy(self, X, offset):
        X = self.schema.check_codes(X)
        n = X.shape[0]
        out = np.empty((n, self._width))
        JDouble = self._jpype.JArray(self._jpype.JDouble)
        for r in range(n):
            raw = JDouble(X[r].tolist())
            preds = JDouble(self._preds_size)
            o = 0.0 if offset is None else float(offset[r])
            if self._requires_offset or o != 0:
                res = self._run(self.model.score0, raw, o, preds)
            else:
                res = self._run(self.model.score0, raw, preds)
            out[r] = np.asarray(res)[: self._width]
        return out


def _py(v):
    """NumPy scalars to plain Python for normalisation."""
    if isinstance(v, np.datetime64):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v
