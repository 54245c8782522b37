#!/usr/bin/env python3
"""Regenerate values.schema.json and the README parameter tables from values.yaml.

Run after editing values.yaml: `.venv/bin/python charts/converge/hack/generate.py`. Types come
from the defaults, constraints from the key names below; every object rejects unknown keys except
the free-form maps. tests/deploy fails when either generated file is stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[1]

_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "description": "Kubernetes resource requests and limits.",
    "properties": {
        side: {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cpu": {"type": ["string", "number"], "pattern": _QUANTITY},
                "memory": {"type": "string", "pattern": _QUANTITY},
                "ephemeral-storage": {"type": "string", "pattern": _QUANTITY},
            },
        }
        for side in ("requests", "limits")
    },
}

# key name -> schema, for keys whose meaning does not depend on where they sit
_BY_KEY: dict[str, dict] = {
    "commonLabels": _STRING_MAP,
    "commonAnnotations": _STRING_MAP,
    "annotations": _STRING_MAP,
    "nodeSelector": _STRING_MAP,
    "affinity": {"type": "object"},
    "variables": {"type": "object"},
    "schedule": {"type": "string", "pattern": r"^(@(hourly|daily|weekly|monthly)|\S+( \S+){4})?$"},
    "startTime": {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"},
    "resources": _RESOURCES,
    "extraEnv": {"type": "array", "items": {"type": "object"}},
    "tolerations": {"type": "array", "items": {"type": "object"}},
    "imagePullSecrets": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "knativeNamespaces": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "drop": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "externalEgressCidrs": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-fA-F.:]+/[0-9]{1,3}$"}},
    "pullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
    "digest": {"type": "string", "pattern": "^(sha256:[a-f0-9]{64})?$"},
    "visibility": {"type": "string", "enum": ["public", "cluster-local"]},
    "scorer": {"type": "string", "enum": ["native", "genmodel"]},
    "minScale": {"type": "string", "pattern": "^[0-9]+$"},
    "maxScale": {"type": "string", "pattern": "^[0-9]+$"},
    "initialScale": {"type": "string", "pattern": "^[0-9]+$"},
    "scaleDownDelay": {"type": "string", "pattern": "^[0-9]+(s|m|h)$"},
    "backoffPolicy": {"type": "string", "enum": ["exponential", "linear"]},
    "poolMode": {"type": "string", "enum": ["session", "transaction", "statement"]},
    "authType": {"type": "string", "enum": ["scram-sha-256", "md5"]},
    "heapPercent": {"type": "integer", "minimum": 1, "maximum": 70},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "directPort": {"type": "integer", "minimum": 1, "maximum": 65535},
    "projectPath": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_./-]*$", "not": {"pattern": r"\.\."}},
    "path": {"type": "string", "pattern": "^/"},
    "livenessPath": {"type": "string", "pattern": "^/"},
    "readinessPath": {"type": "string", "pattern": "^/"},
    "runAsUser": {"type": "integer", "minimum": 1},
    "runAsGroup": {"type": "integer", "minimum": 1},
    "fsGroup": {"type": "integer", "minimum": 1},
    "runAsNonRoot": {"type": "boolean", "const": True},
    "allowPrivilegeEscalation": {"type": "boolean", "const": False},
    "replicas": {"type": "integer", "minimum": 1},
    "retry": {"type": "integer", "minimum": 0},
    "targetConcurrency": {"type": "integer", "minimum": 1},
    "defaultPoolSize": {"type": "integer", "minimum": 1},
    "maxClientConn": {"type": "integer", "minimum": 1},
    "timeoutSeconds": {"type": "integer", "minimum": 1},
    "lookupTimeoutSeconds": {"type": "integer", "minimum": 1},
    "cacheTtlSeconds": {"type": "integer", "minimum": 1},
    "containerConcurrency": {"type": "integer", "minimum": 0},
    "maxPreparedStatements": {"type": "integer", "minimum": 0},
    "maxUnavailable": {"type": "integer", "minimum": 0},
    "db": {"type": "integer", "minimum": 0},
    "maxmemory": {"type": "string", "pattern": "^[0-9]+(kb|mb|gb)?$"},
    "size": {"type": "string", "pattern": _QUANTITY},
}


def _special(path: list[str]) -> dict | None:
    key = path[-1]
    if key in ("backoffDelay", "timeout") and "delivery" in path:
        return {"type": "string", "pattern": "^(PT[0-9.]+[SMH])?$"}
    if key == "type" and "seccompProfile" in path:
        return {"type": "string", "enum": ["RuntimeDefault", "Localhost"]}
    if key == "type" and "triggers" in path:
        return {"type": "string", "minLength": 1}
    if key in _BY_KEY:
        return json.loads(json.dumps(_BY_KEY[key]))
    return None


def params(text: str) -> dict[str, str]:
    """``@param`` path -> its description, from values.yaml's comments (the one source of both
    the schema's descriptions and the README's table)."""
    found = (re.match(r"\s*## @param ([\w.]+) (.*)", line) for line in text.splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def _build(path: list[str], value, docs: dict[str, str]) -> dict:
    node = _node(path, value, docs)
    if ".".join(path) in docs:
        node["description"] = docs[".".join(path)]
    return node


def _node(path: list[str], value, docs: dict[str, str]) -> dict:
    special = _special(path) if path else None
    if special is not None:
        return special
    if isinstance(value, dict):
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: _build(path + [k], v, docs) for k, v in value.items()},
        }
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    raise SystemExit(f"no schema type for {'.'.join(path)}")


def generate_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    schema = {"$schema": "https://json-schema.org/draft-07/schema#", "title": "converge chart values",
              **_build([], values, params(text))}
    # The H2O heap is computed from this limit, so it must exist.
    h2o_resources = schema["properties"]["h2o"]["properties"]["resources"]
    h2o_resources["required"] = ["limits"]
    h2o_resources["properties"]["limits"]["required"] = ["memory"]
    (CHART / "values.schema.json").write_text(json.dumps(schema, indent=2) + "\n")


def _lookup(values: dict, path: str):
    node = values
    for part in path.split("."):
        node = node[part]
    return node


def generate_readme() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    out = []
    for line in text.splitlines():
        section = re.match(r"\s*## @section (.*)", line)
        if section:
            out.append(f"\n### {section.group(1)}\n\n| Name | Description | Default |\n| --- | --- | --- |")
            continue
        param = re.match(r"\s*## @param ([\w.]+) (.*)", line)
        if param:
            path, description = param.groups()
            value = _lookup(values, path)
            if isinstance(value, str):
                default = f'"{value}"'
            else:
                default = yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()
            out.append(f"| `{path}` | {description.replace('|', chr(92) + '|')} | `{default.replace('|', chr(92) + '|')}` |")
    head = (CHART / "hack" / "README.head.md").read_text()
    (CHART / "README.md").write_text(head + "\n".join(out).lstrip("\n") + "\n")


if __name__ == "__main__":
    generate_schema()
    generate_readme()
