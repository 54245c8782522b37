"""What a request's features mean to the model: unknown names and values that become missing.

H2O scores a missing or unparseable value as NA, so ``{"agee": 65}`` (a typo) and ``{"AGE":
"sixty"}`` (a string where a number belongs) are scored as if nothing had been sent, and a client
never learns it. The schema comes from the MOJO itself (feature names, numeric or categorical,
levels); the rules are the scorer's own (a number column parses strings as Java does, a category
column accepts its levels, their ``name.level`` form and whole numbers that name a level).

Lenient (the default, as H2O and genmodel behave): the answer still comes, with ``input_issues``
per row and a metric. Strict (per request, or ``CONVERGE_STRICT_INPUTS``): a 422 naming each
offending field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from converge.mojo._javafloat import parse_java_double
from converge.errors import InvalidInput
from converge.serving.observability import INPUT_ISSUES

MAX_REPORTED = 20  # per row and kind: a row of 500 typos must not make a megabyte of warnings
_UNKNOWN = frozenset()  # the marker for "not a feature of this model" (None means a number)


@dataclass(frozen=True)
class InputSchema:
    """Per feature: ``None`` for a number, else the set of accepted level strings."""

    features: dict[str, frozenset[str] | None]
    ignored: frozenset[str]  # the response and offset columns: known, not scored as features

    @classmethod
    def of(cls, model: Any) -> InputSchema | None:
        """The schema of a converge MOJO model, or None when the model does not describe one."""
        names = getattr(model, "feature_names", None)
        domains = getattr(model, "domains", None)
        if not names or not isinstance(domains, Mapping):
            return None
        features: dict[str, frozenset[str] | None] = {}
        for name in names:
            levels = domains.get(name)
            features[name] = (
                None if levels is None else frozenset([*levels, *(f"{name}.{lv}" for lv in levels)])
            )
        ignored = {getattr(model, "response_name", None), getattr(model, "offset_column", None)}
        return cls(features, frozenset(n for n in ignored if n))

    def issues(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        """``{"unknown_features": [...], "coerced_to_missing": [...]}`` for one row, or None."""
        unknown: list[str] = []
        coerced: list[str] = []
        features = self.features
        for key, value in row.items():
            levels = features.get(key, _UNKNOWN)
            kind = type(value)
            # Fast paths (this runs on every request): a number for a number, a level for a
            # category, a missing value. The contracts have already refused NaN and Infinity.
            if levels is None:
                if kind is float or kind is int or value is None:
                    continue
            elif levels is _UNKNOWN:
                if key not in self.ignored:
                    unknown.append(key)
                continue
            elif (kind is str and value in levels) or value is None:
                continue
            if not self._accepts(levels, value):
                coerced.append(key)
        if not unknown and not coerced:
            return None
        out: dict[str, Any] = {}
        if unknown:
            out["unknown_features"] = sorted(unknown)[:MAX_REPORTED]
        if coerced:
            out["coerced_to_missing"] = sorted(coerced)[:MAX_REPORTED]
        return out

    @staticmethod
    def _accepts(levels: frozenset[str] | None, value: Any) -> bool:
        if levels is None:  # a number column
            if isinstance(value, bool):
                return True  # scored as 1/0, as H2O parsed booleans in training
            if isinstance(value, int | float):
                return not (isinstance(value, float) and math.isnan(value))
            if isinstance(value, str):
                try:
                    return not math.isnan(parse_java_double(value))
                except ValueError:
                    return False
            return False
        if isinstance(value, bool):
            return str(value) in levels
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return str(int(value)) in levels
        return isinstance(value, str) and value in levels


def check_rows(
    schema: InputSchema | None, model: str, rows: Sequence[Mapping[str, Any]], strict: bool
) -> list[dict[str, Any]] | None:
    """Per-row issues (``[{"row": i, ...}]``), counted in the metric; strict raises a 422."""
    if schema is None:
        return None
    found = []
    for i, row in enumerate(rows):
        issues = schema.issues(row)
        if issues is not None:
            found.append({"row": i, **issues})
    if not found:
        return None
    for kind in ("unknown_features", "coerced_to_missing"):
        count = sum(len(f.get(kind, ())) for f in found)
        if count:
            INPUT_ISSUES.labels(model=model, kind=kind).inc(count)
    if strict:
        detail = [
            {"loc": ["instances", f["row"], "features", name], "msg": msg, "type": kind}
            for f in found
            for kind, msg in (
                ("unknown_features", "unknown feature"),
                ("coerced_to_missing", "value would be scored as missing"),
            )
            for name in f.get(kind, ())
        ]
        names = ", ".join(f"{d['loc'][-1]} ({d['msg']})" for d in detail[:10])
        more = f" and {len(detail) - 10} more" if len(detail) > 10 else ""
        raise InvalidInput(f"strict input check failed: {names}{more}", detail=detail)
    return found
