"""One conformance case: an H2O estimator with its options, trained on one generated data set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    #: an ``h2o.estimators`` class name
    estimator: str
    params: dict = field(default_factory=dict)
    #: a generator name in ``data.py``
    dataset: str = "mixed"
    #: the response column (None for unsupervised models)
    y: str | None = None
    #: the feature columns (None: every feature of the data set)
    x: list[str] | None = None
    #: extra ``PredictCsv`` flags
    predict_csv_args: tuple[str, ...] = ()
    #: custom training for APIs that do not fit ``estimator(**params).train``:
    #: ``(h2o_module, frame) -> model``
    train: Callable | None = None
    #: also record genmodel's SHAP contributions (``expected_contributions.csv``)
    contributions: bool = False
    #: also record PredictCsv's leaf node assignment (``expected_leaves.csv``)
    leaf_assignment: bool = False
