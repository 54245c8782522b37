"""JVM-free scoring of H2O-3 MOJO models.

``load_mojo(path_or_bytes, backend="auto")`` returns a :class:`Model`; ``Model.predict`` takes a
DataFrame or dict rows and answers what h2o-genmodel's ``PredictCsv`` would. Importing this package
and scoring records does not import pandas.
"""

from .errors import (
    BackendUnavailableError,
    CorruptMojoError,
    InvalidInputError,
    MojoError,
    UnsupportedMojoError,
)
from .model import Model, load_mojo

__all__ = [
    "BackendUnavailableError",
    "CorruptMojoError",
    "InvalidInputError",
    "Model",
    "MojoError",
    "UnsupportedMojoError",
    "load_mojo",
]
