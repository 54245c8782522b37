"""The whole local stack: start in dependency order, stop in reverse, publish the addresses.

``up()`` writes ``<state_dir>/stack.env`` with the ``CONVERGE_*`` variables; ``Settings`` reads that
file as a fallback, so any process on this machine finds the running stack without exports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from converge.settings import Settings
from converge.stack import credentials
from converge.stack.backend import Backend, service_classes
from converge.stack.h2o import H2O
from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.redis import Redis
from converge.stack.s3 import S3
from converge.stack.service import Service

ORDER = ("postgres", "pgbouncer", "redis", "s3", "h2o")
ENV_FILE = "stack.env"


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


class Stack:
    """The five services of one state directory, configured from ``Settings``.

    ``ports`` pins ports (tests); otherwise each service prefers the port in its settings URL and
    falls back to a free one when that is taken.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        state_dir: Path | str | None = None,
        ports: dict[str, int] | None = None,
        durable: bool = True,
        backend: Backend = "local",
    ) -> None:
        settings = settings or Settings()
        classes = service_classes(backend)
        self.settings = settings
        self.state_dir = Path(state_dir or settings.state_dir)
        ports = ports or {}
        db = urlsplit(settings.database_url.get_secret_value())
        redis_password = urlsplit(settings.redis_url).password

        def where(name: str, url: str) -> dict[str, Any]:
            return {"port": ports.get(name), "preferred_port": _port(url)}

        self.postgres: Postgres = classes["postgres"](
            self.state_dir,
            user=unquote(db.username or "converge"),
            password=unquote(db.password or "converge"),
            database=unquote(db.path.lstrip("/") or "converge"),
            durable=durable,
            **where("postgres", settings.database_direct_url.get_secret_value()),
        )
        self.pgbouncer: PgBouncer = classes["pgbouncer"](
            self.state_dir,
            self.postgres,
            **where("pgbouncer", settings.database_url.get_secret_value()),
        )
        self.redis: Redis = classes["redis"](
            self.state_dir,
            password=unquote(redis_password) if redis_password else None,
            **where("redis", settings.redis_url),
        )
        self.s3: S3 = classes["s3"](
            self.state_dir,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            reader_secret_key=credentials.load_or_create(self.state_dir)[
                "CONVERGE_S3_READER_SECRET_KEY"
            ],
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            **where("s3", settings.s3_endpoint_url),
        )
        self.h2o: H2O = classes["h2o"](
            self.state_dir, heap=settings.h2o_heap, **where("h2o", settings.h2o_url)
        )

    @property
    def services(self) -> dict[str, Service]:
        return {name: getattr(self, name) for name in ORDER}

    @property
    def env_file(self) -> Path:
        return self.state_dir / ENV_FILE

    def up(self, *, h2o: bool = True) -> list[Service]:
        """Start (or reuse) each service in order; on failure stop what this call started."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        started: list[Service] = []
        for name, service in self.services.items():
            if name == "h2o" and not h2o:
                continue
            try:
                service.start()
            except Exception:
                for done in reversed(started):
                    if not done.reused:
                        done.stop()
                raise
            started.append(service)
        # Everything that runs, not just what this call started: `up --no-h2o` next to a running
        # H2O must keep publishing it.
        self.write_env()
        return started

    def down(self) -> None:
        """Stop every service of this state directory (reverse order) and drop ``stack.env``."""
        errors: list[str] = []
        for service in reversed(list(self.services.values())):
            try:
                service.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                errors.append(f"{service.name}: {exc}")
        self.env_file.unlink(missing_ok=True)
        if errors:
            raise RuntimeError("; ".join(errors))

    def running(self) -> list[Service]:
        return [s for s in self.services.values() if s.is_running()]

    def status(self) -> list[dict[str, Any]]:
        return [service.describe() for service in self.services.values()]

    def env(self, services: list[Service] | None = None) -> dict[str, str]:
        """The variables of the given (default: running) services, the state directory and the
        stack's credentials."""
        env = {"CONVERGE_STATE_DIR": str(self.state_dir), **credentials.load_or_create(self.state_dir)}
        for service in services if services is not None else self.running():
            env.update(service.env())
        return env

    def write_env(self, services: list[Service] | None = None) -> Path:
        """Write ``stack.env`` (mode 0600: it holds passwords) atomically."""
        lines = [f"{key}={_quote(value)}" for key, value in sorted(self.env(services).items())]
        tmp = self.env_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# Written by `converge up`; removed by `converge down`.\n")
            handle.write("\n".join(lines) + "\n")
        os.replace(tmp, self.env_file)
        return self.env_file


def _quote(value: str) -> str:
    """dotenv quoting: plain when safe, else double quotes with escapes."""
    if value and all(c.isalnum() or c in "-_.:/@%+=,~" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
