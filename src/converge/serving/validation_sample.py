"""The reload's check of a parsed model: it must reproduce the trainer's answers on the
validation sample the registry stored with it (labels exactly, probabilities and values within
``1e-9``). :func:`compare_predictions` is pure (plain dicts in, the first difference out) and
unit-tested on its own; :func:`check_sample` scores the sample and compares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson

from converge.serving.holder import LoadedModel
from converge.serving.scoring import predict_rows

PROB_TOLERANCE = 1e-9


class ValidationMismatch(Exception):
    """The artifact does not reproduce the trainer's predictions on the validation sample."""


class SampleError(Exception):
    """The model loads but cannot score its validation sample; the message is the cause's."""


def _same_label(a: Any, b: Any) -> bool:
    """Class labels compare as text; regression values within the tolerance."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or abs(fa - fb) <= PROB_TOLERANCE
    return str(a) == str(b)


def compare_sample(loaded: LoadedModel, sample: dict[str, Any] | None) -> int:
    """Re-score the validation sample; raises :class:`ValidationMismatch` naming the first diff."""
    if not sample or not sample.get("rows"):
        raise ValidationMismatch("the registry holds no validation sample for this version")
    rows, expected = sample["rows"], sample.get("predictions") or []
    if len(rows) != len(expected):
        raise ValidationMismatch(
            f"validation sample has {len(rows)} rows but {len(expected)} predictions"
        )
    compare_predictions(predict_rows(loaded, rows), expected, loaded.classes or [])
    return len(rows)


def compare_predictions(
    got: Sequence[dict[str, Any]],
    expected: Sequence[dict[str, Any]],
    classes: Sequence[tuple[str, str]],
) -> None:
    """converge's answers (``label``, ``probabilities``, ``outputs``) against the trainer's
    (H2O's prediction frame: ``predict`` and one column per class, or the model's own output
    columns); ``classes`` pairs each label with its column. Raises :class:`ValidationMismatch`
    naming the first row and value that differ."""
    for i, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        outputs = mine.get("outputs")
        if outputs and any(name in theirs for name in outputs):  # a cluster, anomaly score...
            for name, value in outputs.items():
                if not _same_label(value, theirs.get(name)):
                    raise ValidationMismatch(
                        f"row {i}: {name} {value!r} != trainer's {theirs.get(name)!r}")
            continue
        if not _same_label(mine["label"], theirs.get("predict")):
            raise ValidationMismatch(
                f"row {i}: label {mine['label']!r} != trainer's {theirs.get('predict')!r}"
            )
        for cls, column in classes:
            p = (mine["probabilities"] or {}).get(cls)
            want = theirs.get(column, theirs.get(cls))
            if p is None or want is None:
                raise ValidationMismatch(f"row {i}: no probability for class {cls!r}")
            if not abs(p - float(want)) <= PROB_TOLERANCE:
                raise ValidationMismatch(
                    f"row {i}: P({cls}) = {p!r} differs from trainer's {want!r} by more"
                    f" than {PROB_TOLERANCE}"
                )


def check_sample(model: Any, sample: Any) -> int:
    """Re-score the validation sample; a failure other than a mismatch becomes a
    :class:`SampleError` with the same message (it always pickles, whatever the cause was)."""
    try:
        if isinstance(sample, str | bytes):
            sample = orjson.loads(sample)
        return compare_sample(LoadedModel(name="", version=0, sha256="", model=model), sample)
    except ValidationMismatch:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as "cannot score the sample"
        raise SampleError(str(exc)) from exc
