"""Parse ``model.ini`` and the domain files the way genmodel's ``ModelMojoReader`` does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._archive import MojoArchive
from .errors import CorruptMojoError

_INT = re.compile(r"[+-]?[0-9]+")


def parse_value(raw: str):
    """``ParseUtils.tryParse``: null/bool/int/float/[array]/str."""
    if raw == "null":
        return None
    if raw == "true":
        return True
    if raw == "false":
        return False
    if raw.startswith("[") and raw.endswith("]"):
        body = raw[1:-1].strip()
        if not body:
            return []
        parts = body.split(",")
        try:
            return [int(p) for p in parts]
        except ValueError:
            pass
        try:  # machine-written Java doubles: Python's float() accepts NaN/Infinity/1.0E-5 alike
            return [float(p) for p in parts]
        except ValueError:
            return [p.strip() for p in parts]
    if _INT.fullmatch(raw):
        return int(raw)
    from ._javafloat import parse_java_double

    try:
        return parse_java_double(raw)
    except ValueError:
        return raw


def split_java_lines(text: str) -> list[str]:
    """Split like ``BufferedReader.readLine``: only on \\n, \\r\\n or \\r."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append({"n": "\n", "r": "\r"}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass
class MojoInfo:
    """Everything in ``model.ini`` plus the domains, for one (sub-)model."""

    source: str
    info: dict[str, object]
    columns: list[str]
    domains: list[list[str] | None]
    extra: dict = field(default_factory=dict)

    def get(self, key: str, default=None):
        v = self.info.get(key)
        return default if v is None else v

    def require(self, key: str):
        v = self.info.get(key)
        if v is None:
            raise CorruptMojoError(f"model.ini lacks key {key!r}", self.source)
        return v

    @property
    def algo(self) -> str:
        return str(self.get("algo", "")).lower()

    @property
    def mojo_version(self) -> float:
        return float(self.get("mojo_version", 1.0))

    @property
    def n_features(self) -> int:
        return int(self.require("n_features"))

    @property
    def n_classes(self) -> int:
        return int(self.get("n_classes", 1))

    @property
    def supervised(self) -> bool:
        return bool(self.get("supervised", True))

    @property
    def response_domain(self) -> list[str] | None:
        return self.domains[-1] if self.supervised and self.domains else None


def read_info(archive: MojoArchive) -> MojoInfo:
    """Read ``model.ini`` and every listed domain file of the model at the archive's prefix."""
    source = archive.source + (f"!{archive.prefix}" if archive.prefix else "")
    if not archive.exists("model.ini"):
        raise CorruptMojoError("no model.ini at the model root (not a MOJO?)", source)
    info: dict[str, object] = {}
    columns: list[str] = []
    dom_specs: list[tuple[int, int, str]] = []
    section = None
    for line in split_java_lines(archive.read_text("model.ini")):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in ("[info]", "[columns]", "[domains]"):
            section = line
            continue
        if section == "[info]":
            if "=" not in line:
                raise CorruptMojoError(f"bad [info] line {line!r}", source)
            k, v = line.split("=", 1)
            k, v = k.strip(), v.strip()
            info[k] = v if k == "uuid" else parse_value(v)
        elif section == "[columns]":
            columns.append(line)
        elif section == "[domains]":
            m = re.fullmatch(r"(\d+)\s*:\s*(\d+)\s+(\S+)", line)
            if not m:
                raise CorruptMojoError(f"bad [domains] line {line!r}", source)
            dom_specs.append((int(m.group(1)), int(m.group(2)), m.group(3)))
        else:
            raise CorruptMojoError(f"line outside a section: {line!r}", source)
    n_columns = info.get("n_columns")
    if isinstance(n_columns, int) and n_columns != len(columns):
        raise CorruptMojoError(f"n_columns={n_columns} but {len(columns)} columns listed", source)
    escape = bool(info.get("escape_domain_values") or False)
    domains: list[list[str] | None] = [None] * len(columns)
    for idx, count, fname in dom_specs:
        if idx >= len(columns):
            continue
        text = archive.read_text(f"domains/{fname}")
        levels = split_java_lines(text)
        if len(levels) < count:
            raise CorruptMojoError(f"domains/{fname} has {len(levels)} levels, expected {count}", source)
        levels = levels[:count]
        if escape:
            levels = [_unescape(s) for s in levels]
        domains[idx] = levels
    return MojoInfo(source=source, info=info, columns=columns, domains=domains)
