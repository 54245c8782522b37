"""PgBouncer in transaction pool mode in front of the local Postgres, SCRAM on both sides.

The userlist holds the role's SCRAM secret (read from ``pg_authid``), not a password: PgBouncer
verifies clients with it and reuses the client's SCRAM proof to log in to Postgres.
Clients must not rely on server-side prepared statements here: asyncpg needs
``statement_cache_size=0`` and psycopg ``prepare_threshold=None``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from converge.stack.postgres import Postgres, _url
from converge.stack.service import Service, ServiceError

BINARY_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def find_pgbouncer() -> str:
    for cand in (shutil.which("pgbouncer"), *BINARY_CANDIDATES):
        if cand and Path(cand).exists():
            return cand
    raise ServiceError("pgbouncer not found (apt-get install pgbouncer)")


class PgBouncer(Service):
    """PgBouncer for one Postgres; ``dsn`` is what applications use (``CONVERGE_DATABASE_URL``)."""

    name = "pgbouncer"
    unprivileged = True
    start_timeout = 30.0

    def __init__(
        self,
        state_dir: Path | str,
        postgres: Postgres,
        port: int | None = None,
        *,
        preferred_port: int | None = None,
        pool_size: int = 20,
        query_wait_timeout: int = 15,
    ) -> None:
        """``query_wait_timeout``: how long a query waits for a server before failing; while
        Postgres is down that is how long clients hang (PgBouncer's default is 120 s)."""
        super().__init__(state_dir, port, preferred_port=preferred_port)
        self.postgres = postgres
        self.pool_size = pool_size
        self.query_wait_timeout = query_wait_timeout

    @property
    def config_file(self) -> Path:
        return self.dir / "pgbouncer.ini"

    @property
    def dsn(self) -> str:
        pg = self.postgres
        return _url(pg.user, pg.password, self.host, self.port, pg.database)

    def role_dsn(self, role: str) -> str:
        """The pooled URL of a service role (``predict`` or ``ingest``)."""
        pg = self.postgres
        name = f"{pg.user}_{role}"
        return _url(name, pg.role_passwords[name], self.host, self.port, pg.database)

    @property
    def url(self) -> str:
        pg = self.postgres
        return f"postgresql://{pg.user}@{self.host}:{self.port}/{pg.database}"

    def env(self) -> dict[str, str]:
        return {"CONVERGE_DATABASE_URL": self.dsn}

    def command(self) -> list[str]:
        return [find_pgbouncer(), str(self.config_file)]

    def _prepare(self) -> None:
        """Write the config and userlist; they are rewritten on every start (the port may move)."""
        import psycopg

        pg = self.postgres
        userlist = self.dir / "userlist.txt"
        roles = [pg.user, *pg.role_passwords]
        try:
            secrets = {role: pg.scram_secret(role) for role in roles}
        except psycopg.OperationalError as exc:
            # Postgres is down (a fault test): PgBouncer can still start with the secret it had.
            if not userlist.exists():
                raise ServiceError(f"pgbouncer needs Postgres for its first start: {exc}") from exc
        else:
            userlist.write_text("".join(f'"{r}" "{secret}"\n' for r, secret in secrets.items()))
            userlist.chmod(0o600)
        self.config_file.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"{pg.database} = host={pg.host} port={pg.port} dbname={pg.database}",
                    "",
                    "[pgbouncer]",
                    f"listen_addr = {self.host}",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = scram-sha-256",
                    f"auth_file = {self.dir / 'userlist.txt'}",
                    "pool_mode = transaction",
                    f"default_pool_size = {self.pool_size}",
                    "max_client_conn = 1000",
                    "ignore_startup_parameters = extra_float_digits,options",
                    # After a failed login PgBouncer fails every client until it tries again:
                    # retry often (instead of the 15 s default), so clients stop failing within a
                    # fraction of a second of a Postgres restart.
                    "server_login_retry = 0.05",
                    "server_connect_timeout = 5",
                    f"query_wait_timeout = {self.query_wait_timeout}",
                    "logfile =",
                    "pidfile =",
                    "",
                ]
            )
        )
        run_as = self._run_as()
        if run_as is not None:
            run_as.own(self.dir)

    def ready(self) -> bool:
        """A real query through the pooler when Postgres runs; otherwise the listener suffices."""
        import psycopg

        if not self.postgres.is_running():
            from converge.stack.procs import port_open

            return port_open(self.port, self.host)
        with psycopg.connect(self.dsn, connect_timeout=3, prepare_threshold=None) as conn:
            conn.execute("SELECT 1")
        return True
