"""``Double.parseDouble`` semantics in Python (PredictCsv hands every cell over as a string)."""

from __future__ import annotations

import re

_JAVA_DOUBLE = re.compile(
    r"(?P<sign>[+-]?)(?:"
    r"(?P<nan>NaN)|(?P<inf>Infinity)|"
    r"(?P<dec>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?|"
    r"(?P<hex>0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?"
    r")"
)


def java_trim(s: str) -> str:
    """``String.trim()``: strip characters <= U+0020 at both ends (not Unicode whitespace)."""
    i, j = 0, len(s)
    while i < j and s[i] <= " ":
        i += 1
    while j > i and s[j - 1] <= " ":
        j -= 1
    return s[i:j]


def parse_java_double(s: str) -> float:
    """Parse like ``Double.parseDouble(s)`` (which trims); raise ValueError where Java throws."""
    t = java_trim(s)
    m = _JAVA_DOUBLE.fullmatch(t)
    if m is None:
        raise ValueError(f"not a number: {s!r}")
    neg = m.group("sign") == "-"
    if m.group("nan"):
        return float("nan")
    if m.group("inf"):
        return float("-inf") if neg else float("inf")
    if m.group("dec") is not None:
        v = float(m.group("dec"))
    else:
        v = float.fromhex(m.group("hex"))
    return -v if neg else v
