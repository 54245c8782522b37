"""Postgres: a private cluster in the state directory, TCP on 127.0.0.1 only, SCRAM passwords.

The application role (``converge`` by default) owns its database and is not a superuser; the
bootstrap superuser ``postgres`` gets a random password kept in the state directory, for set-up and
for reading the SCRAM secret that PgBouncer needs.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

from converge.stack import scram
from converge.stack.service import Service, ServiceError

SUPERUSER = "postgres"
# Least privilege: besides the application role (migrations, registry, training) each function
# that needs less logs in as its own role; migration 0003 grants their table privileges.
SERVICE_ROLES = ("predict", "ingest")


def find_bindir() -> Path:
    """Server binaries: ``pg_config --bindir``, /usr/lib/postgresql/*/bin, PATH, or ``pgserver``."""
    candidates: list[Path] = []
    if env := os.environ.get("CONVERGE_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], check=False, capture_output=True, text=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(p) for p in versions]
    if on_path := shutil.which("postgres"):
        candidates.append(Path(on_path).resolve().parent)
    try:  # The embedded fallback: a Postgres build inside the pgserver wheel.
        import pgserver  # type: ignore[import-not-found]

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    for cand in candidates:
        if (cand / "postgres").exists() and (cand / "initdb").exists():
            return cand
    raise ServiceError("no Postgres server binaries found (install postgresql or pgserver)")


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


class Postgres(Service):
    """A Postgres cluster; ``dsn`` is the application role's URL, ``admin_dsn`` the superuser's."""

    name = "postgres"
    # SIGTERM is "smart" shutdown and waits for PgBouncer's idle connections forever; SIGINT is
    # "fast": it rolls back open transactions and disconnects clients.
    stop_signal = signal.SIGINT
    unprivileged = True

    def __init__(
        self,
        state_dir: Path | str,
        port: int | None = None,
        *,
        preferred_port: int | None = None,
        user: str = "converge",
        password: str = "converge",
        database: str = "converge",
        durable: bool = True,
    ) -> None:
        """``durable=False`` turns off fsync: for throw-away test clusters only."""
        super().__init__(state_dir, port, preferred_port=preferred_port)
        self.user, self.password, self.database = user, password, database
        self.durable = durable

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def _superuser_password_file(self) -> Path:
        return self.dir / "superuser.password"

    @property
    def superuser_password(self) -> str:
        return self._superuser_password_file.read_text().strip()

    @property
    def dsn(self) -> str:
        return _url(self.user, self.password, self.host, self.port, self.database)

    @property
    def role_passwords(self) -> dict[str, str]:
        """``{"<user>_predict": password, "<user>_ingest": password}``, generated once."""
        path = self.dir / "roles.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        wanted = {f"{self.user}_{role}": known.get(f"{self.user}_{role}") for role in SERVICE_ROLES}
        if any(v is None for v in wanted.values()):
            wanted = {k: v or secrets.token_urlsafe(24) for k, v in wanted.items()}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(wanted))
            path.chmod(0o600)
        return wanted

    def role_dsn(self, role: str) -> str:
        """The direct URL of a service role (``predict`` or ``ingest``)."""
        name = f"{self.user}_{role}"
        return _url(name, self.role_passwords[name], self.host, self.port, self.database)

    @property
    def admin_dsn(self) -> str:
        return _url(SUPERUSER, self.superuser_password, self.host, self.port, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def env(self) -> dict[str, str]:
        return {"CONVERGE_DATABASE_DIRECT_URL": self.dsn}

    def command(self) -> list[str]:
        argv = [
            str(find_bindir() / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", "unix_socket_directories=",
            "-c", "password_encryption=scram-sha-256",
            "-c", "logging_collector=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.durable:
            argv += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        return argv

    def _prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        run_as = self._run_as()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-initialised cluster from an interrupted start
        if not self._superuser_password_file.exists():
            self._superuser_password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self._superuser_password_file.chmod(0o600)
        pwfile = self.dir / "initdb.pw"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        if run_as is not None:
            run_as.own(self.dir)
        argv = [
            str(find_bindir() / "initdb"),
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E", "UTF8",
            "--no-locale",
            "--no-sync",
        ]  # fmt: skip
        if run_as is not None:
            argv = run_as.prefix(self.dir) + argv
        try:
            done = subprocess.run(
                argv,
                check=False,
                capture_output=True,
                text=True,
                env=self._child_env(),
                cwd=self.dir,
                timeout=180,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ServiceError(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.admin_dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def _after_start(self) -> None:
        """Create (or re-password) the application role, the service roles and the database; add
        pgvector if present."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
            self._ensure_role(conn, self.user, self.password)
            for role, password in self.role_passwords.items():
                self._ensure_role(conn, role, password)
            has_db = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.database]
            ).fetchone()
            if not has_db:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(self.database), sql.Identifier(self.user)
                    )
                )
        with psycopg.connect(self._admin_dsn_for(self.database), autocommit=True) as conn:
            vector = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            if vector:  # Creating it needs a superuser; the app role then just uses the type.
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    @staticmethod
    def _ensure_role(conn, role: str, password: str) -> None:
        """Create ``role`` (LOGIN) or set its password, unless it already matches."""
        from psycopg import sql

        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role]).fetchone()
        if row is None or not scram.matches(row[0], password):
            verb = "ALTER" if row else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )

    def _admin_dsn_for(self, database: str) -> str:
        return _url(SUPERUSER, self.superuser_password, self.host, self.port, database)

    def scram_secret(self, role: str | None = None) -> str:
        """The stored ``SCRAM-SHA-256$...`` secret of ``role``, as PgBouncer's userlist wants it."""
        import psycopg

        role = role or self.user
        with psycopg.connect(self.admin_dsn, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role]
            ).fetchone()
        if not row or not row[0] or not row[0].startswith("SCRAM-SHA-256$"):
            raise ServiceError(f"role {role!r} has no SCRAM secret")
        return row[0]


def _url(user: str, password: str, host: str, port: int, database: str) -> str:
    """A libpq URL with every part percent-encoded (passwords may hold ``@`` or ``/``)."""
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"postgresql://{auth}@{host}:{port}/{quote(database, safe='')}"
