"""Driverless AI ``pipeline.mojo`` files through the ``daimojo`` package (imported lazily).

These are a different format from H2O-3 MOJOs (protobuf pipelines) and need a Driverless AI
license at run time (``DRIVERLESS_AI_LICENSE_FILE`` or ``DRIVERLESS_AI_LICENSE_KEY``). Without the
package or the license this backend raises :class:`BackendUnavailableError` saying which.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, CorruptMojoError, InvalidInputError

_LICENSE_VARS = ("DRIVERLESS_AI_LICENSE_FILE", "DRIVERLESS_AI_LICENSE_KEY")


def _import_daimojo():
    try:
        import daimojo.model as dm
    except ImportError as e:
        raise BackendUnavailableError(
            "the 'daimojo' package is not installed (pip install 'converge[daimojo]'); it scores "
            "Driverless AI pipeline.mojo files and needs a Driverless AI license"
        ) from e
    return dm


def load_daimojo(path_or_bytes) -> DaimojoModel:
    """Load a Driverless AI pipeline; raises BackendUnavailableError without package or license."""
    dm = _import_daimojo()
    if not any(os.environ.get(v) for v in _LICENSE_VARS):
        raise BackendUnavailableError(
            "no Driverless AI license: set DRIVERLESS_AI_LICENSE_FILE or DRIVERLESS_AI_LICENSE_KEY"
        )
    tmp = None
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        tmp = tempfile.NamedTemporaryFile(suffix=".mojo", delete=False)
        tmp.write(bytes(path_or_bytes))
        tmp.close()
        path = tmp.name
    else:
        path = os.fspath(path_or_bytes)
        if not Path(path).is_file():
            raise CorruptMojoError("no such pipeline file", path)
    try:
        pipeline = dm.model(path)
    except Exception as e:  # the runtime reports license and format problems as plain errors
        msg = str(e)
        if "licen" in msg.lower():
            raise BackendUnavailableError(f"Driverless AI license rejected: {msg}", path) from e
        raise CorruptMojoError(f"daimojo cannot load it: {msg}", path) from e
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    return DaimojoModel(pipeline, path)


class DaimojoModel:
    """The subset of :class:`converge.mojo.Model` a Driverless AI pipeline can offer."""

    algorithm = "driverless_ai_pipeline"
    mojo_version = None
    h2o_version = None
    offset_column = None
    response_name = None

    def __init__(self, pipeline, source: str) -> None:
        self._p = pipeline
        self._source = source
        self.feature_names = list(pipeline.feature_names)
        self.feature_types = dict(zip(self.feature_names, (str(t) for t in pipeline.feature_types)))
        self.output_names = list(pipeline.output_names)
        self.classes = None
        self.category = "Regression" if len(self.output_names) == 1 else "Multinomial"

    def predict(self, data):
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(list(data))
        try:
            import datatable as dt

            frame = dt.Frame(data[self.feature_names])
            res = self._p.predict(frame)
            return res.to_pandas()
        except KeyError as e:
            raise InvalidInputError(f"missing input column {e}", self._source) from e

    def predict_records(self, records) -> list[dict]:
        out = self.predict(records)
        return out.to_dict(orient="records")

    def predict_numpy(self, X) -> np.ndarray:
        import pandas as pd

        return self.predict(pd.DataFrame(np.asarray(X), columns=self.feature_names)).to_numpy()
