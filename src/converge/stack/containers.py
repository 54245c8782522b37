"""The testcontainers backend: Postgres, Redis and S3 (MinIO) in containers on the host network.

Host networking keeps every address identical to the local backend (127.0.0.1 and a chosen port),
so the same clients, checks and fault tests apply; it needs a Linux Docker engine. PgBouncer and
H2O stay local processes (the pgbouncer package and the h2o wheel's jar). A fault test's
``stop()`` stops the container and ``start()`` starts the same one again, so data survives;
testcontainers' reaper removes the containers when the test session ends.

Each service's container is described by a :class:`ContainerSpec` (pinned image, command,
credentials, ports, Docker health check) that can be inspected without Docker; the images are the
ones the Helm chart pins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from converge.stack.postgres import Postgres, _url
from converge.stack.redis import Redis
from converge.stack.s3 import S3
from converge.stack.service import Service, ServiceError

# The images charts/converge/values.yaml pins (tests/unit/test_stack_containers.py keeps them equal).
IMAGES = {
    "postgres": "docker.io/library/postgres:15.12-bookworm",
    "redis": "docker.io/library/redis:7.4.2-bookworm",
    "s3": "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z",
}
_SECOND = 1_000_000_000  # Docker's health check durations are in nanoseconds


@dataclass(frozen=True)
class ContainerSpec:
    """Everything ``docker run`` gets for one service."""

    image: str
    command: list[str]
    env: dict[str, str]
    ports: dict[str, int]  # bound on 127.0.0.1 of the host network
    healthcheck: list[str]  # Docker's HEALTHCHECK test, run inside the container
    network_mode: str = "host"
    health_interval_s: float = 1.0
    health_retries: int = 30
    labels: dict[str, str] = field(default_factory=lambda: {"app.kubernetes.io/part-of": "converge"})

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for docker-py's ``containers.run`` beyond image and command."""
        return {
            "network_mode": self.network_mode,
            "labels": self.labels,
            "healthcheck": {
                "test": ["CMD", *self.healthcheck],
                "interval": int(self.health_interval_s * _SECOND),
                "timeout": 5 * _SECOND,
                "retries": self.health_retries,
            },
        }


class ContainerService(Service):
    """Process management by container instead of pid; subclasses give command, env, health."""

    image: ClassVar[str]
    _container: Any = None

    def container_command(self) -> list[str]:
        return self.command()

    def container_env(self) -> dict[str, str]:
        return {}

    def healthcheck(self) -> list[str]:
        raise NotImplementedError

    def spec(self) -> ContainerSpec:
        """The container definition (ports must have been chosen: ``start()`` does that)."""
        return ContainerSpec(
            image=self.image,
            command=self.container_command(),
            env=self.container_env(),
            ports=dict(self.ports),
            healthcheck=self.healthcheck(),
        )

    def _wrapped(self) -> Any:
        return self._container.get_wrapped_container() if self._container is not None else None

    def alive(self) -> bool:
        wrapped = self._wrapped()
        if wrapped is None:
            return False
        wrapped.reload()
        return wrapped.status == "running"

    @property
    def pid(self) -> int | None:
        return None

    def _stop_stale(self) -> None:
        """Containers belong to the session that made them; nothing to adopt from a record."""

    def _launch(self) -> None:
        wrapped = self._wrapped()
        if wrapped is not None:  # stopped by a fault test: start the same container again
            wrapped.start()
            return
        try:
            from testcontainers.core.container import DockerContainer
        except ImportError as exc:
            raise ServiceError(
                "stack_backend=testcontainers needs the testcontainers package "
                "(pip install testcontainers) and a Docker engine; or set it to local"
            ) from exc
        spec = self.spec()
        container = DockerContainer(spec.image).with_kwargs(**spec.run_kwargs())
        container.with_command(spec.command)
        for key, value in spec.env.items():
            container.with_env(key, value)
        try:
            container.start()
        except Exception as exc:  # docker errors come in many types
            raise ServiceError(f"{self.name}: container {self.image} did not start: {exc}") from exc
        self._container = container
        self._write_record({"container": container.get_wrapped_container().id, "ports": self.ports})

    def stop(self, timeout: float = 20.0) -> None:
        wrapped = self._wrapped()
        if wrapped is not None:
            wrapped.reload()
            if wrapped.status == "running":
                wrapped.stop(timeout=int(timeout))

    def remove(self) -> None:
        """Delete the container for good (session teardown)."""
        if self._container is not None:
            self._container.stop()
            self._container = None

    def log_tail(self, lines: int = 8) -> str:
        wrapped = self._wrapped()
        if wrapped is None:
            return "(no container)"
        text = wrapped.logs(tail=lines).decode(errors="replace").strip().splitlines()
        return " | ".join(text) or "(empty log)"


class PostgresContainer(ContainerService, Postgres):
    """The official image; its entrypoint runs initdb. The application role is the superuser."""

    image = IMAGES["postgres"]

    @property
    def superuser_password(self) -> str:
        return self.password

    @property
    def admin_dsn(self) -> str:
        return self.dsn

    def _admin_dsn_for(self, database: str) -> str:
        return _url(self.user, self.password, self.host, self.port, database)

    def _prepare(self) -> None:
        """initdb happens inside the container."""

    def container_command(self) -> list[str]:
        argv = self.command()
        argv[0] = "postgres"
        # Drop the data directory of the local layout: the image keeps its own. Keep the image's
        # Unix socket: its entrypoint creates the role and database through it before serving.
        i = argv.index("-D")
        argv = argv[:i] + argv[i + 2 :]
        i = argv.index("unix_socket_directories=") - 1
        return argv[:i] + argv[i + 2 :]

    def healthcheck(self) -> list[str]:
        return ["pg_isready", "-h", self.host, "-p", str(self.port), "-U", self.user,
                "-d", self.database]  # fmt: skip

    def container_env(self) -> dict[str, str]:
        return {
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DB": self.database,
            "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256 --auth-local=scram-sha-256",
        }


class RedisContainer(ContainerService, Redis):
    image = IMAGES["redis"]

    def container_command(self) -> list[str]:
        argv = self.command()
        argv[0] = "redis-server"
        i = argv.index("--dir")
        return argv[:i] + argv[i + 2 :]

    def healthcheck(self) -> list[str]:
        return ["redis-cli", "-h", self.host, "-p", str(self.port), "ping"]

    def container_env(self) -> dict[str, str]:
        return {"REDISCLI_AUTH": self.password} if self.password else {}


class S3Container(ContainerService, S3):
    """MinIO, the S3 server of the Helm chart, with the identity as its root user."""

    image = IMAGES["s3"]
    extra_ports = ("console",)

    def _prepare(self) -> None:
        """MinIO takes its credentials from the environment."""

    def _after_stop(self) -> None:
        """Nothing outside the container to clean up."""

    def container_command(self) -> list[str]:
        return [
            "server", "/data",
            "--address", f"{self.host}:{self.port}",
            "--console-address", f"{self.host}:{self.ports['console']}",
        ]  # fmt: skip

    def healthcheck(self) -> list[str]:
        return ["mc", "ready", "converge"]  # the alias comes from MC_HOST_converge

    def container_env(self) -> dict[str, str]:
        return {
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MC_HOST_converge": f"http://{self.access_key}:{self.secret_key}@{self.host}:{self.port}",
            "MC_CONFIG_DIR": "/tmp/mc",
        }

    def env(self) -> dict[str, str]:
        """No read-only user here (creating one needs MinIO's admin client, which the chart's
        bucket Job has): the reader variables name the root identity."""
        return {
            **super().env(),
            "CONVERGE_S3_READER_ACCESS_KEY": self.access_key,
            "CONVERGE_S3_READER_SECRET_KEY": self.secret_key,
        }
