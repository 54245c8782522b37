"""Scoring backends behind one interface, one module each (chosen by name, like Feast stores).

* ``native``: NumPy, no JVM (default);
* ``genmodel``: h2o-genmodel in-process through JPype (reference and fallback);
* ``daimojo``: Driverless AI ``pipeline.mojo`` files through the ``daimojo`` package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

NAMES = ("native", "genmodel", "daimojo")


class Backend(ABC):
    """Produces genmodel's ``preds`` rows (``[label, p...]`` or ``[value]``) for a batch."""

    name: str = ""

    @abstractmethod
    def preds_records(self, records: list, offset: np.ndarray | None) -> np.ndarray: ...

    @abstractmethod
    def preds_columns(self, cols: dict, n: int, offset: np.ndarray | None) -> np.ndarray: ...

    @abstractmethod
    def preds_numpy(self, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray: ...

    def output_columns(self) -> list[str] | None:
        """Column names of ``preds`` for models without the classic ``predict``/class-probability
        layout (clusters, anomaly scores, components...); None for the classic layout."""
        return None

    def preds_row(self, record: dict) -> list[float] | None:
        """``preds`` of one dict row without NumPy, or None where this backend has no such path."""
        return None

    def record_output(self, record: dict, classes: tuple | None, names: tuple) -> dict | None:
        """``Model.predict_records``' dict for one record in one compiled call (``classes``: a
        binomial's two labels, None for a regression; ``names``: its probability names), or None
        where this backend has no such path for the model or the record."""
        return None

    def contribution_names(self) -> list[str] | None:
        """The columns of :meth:`contributions` where they are not the model's inputs."""
        return None

    def contributions(self, records: list) -> list[list[float]]:
        """SHAP contributions of each record: one per feature, then the bias term."""
        return self._explained("contributions", records)

    def reconstruction(self, records: list) -> tuple[list[str], list[list[float]]]:
        """A GLRM's reconstruction of each record, and its columns' names."""
        return self._explained("reconstruct", records)

    def calibrated_probabilities(self, records: list) -> list[list[float]]:
        """Each record's calibrated class probabilities (models trained with ``calibrate_model``)."""
        return self._explained("calibrated", records)

    def leaf_assignment(self, records: list, node_ids: bool = False) -> tuple[list[str], list[list]]:
        """Each tree's decision path (or leaf node id) for each record, and the trees' names."""
        return self._explained("leaf_assignment", records, node_ids=node_ids)

    def _explained(self, what: str, records: list, **options):
        """The answer to one of the questions above; a backend that computes none refuses."""
        from ..errors import UnsupportedMojoError

        raise UnsupportedMojoError(f"{what.replace('_', ' ')}: not computed by the {self.name} backend")

    def close(self) -> None:
        """Release resources (nothing by default)."""
