"""Alembic migrations shipped inside the package, so ``converge migrate`` works from an install.

Migrations run through PgBouncer (transaction pool mode) with psycopg 3 and server-side prepared
statements off (``prepare_threshold=None``). All revisions run in one transaction, serialised by a
transaction-scoped advisory lock so two migrators racing at deploy time do not collide.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from converge.settings import Settings, get_settings

__all__ = [
    "HEAD",
    "alembic_config",
    "current",
    "downgrade",
    "head",
    "make_engine",
    "sqlalchemy_url",
    "upgrade",
]

HERE = Path(__file__).resolve().parent
HEAD = "head"
# Alembic's `context`/`op` are module-global proxies: one command at a time per process. Across
# processes the advisory lock in env.py does the serialising.
_COMMAND_LOCK = threading.Lock()


def make_engine(url: str) -> Engine:
    """One short-lived connection, no server-side prepared statements (PgBouncer-safe)."""
    return create_engine(url, poolclass=NullPool, connect_args={"prepare_threshold": None})


def sqlalchemy_url(settings: Settings | None = None) -> str:
    """The database URL with the psycopg 3 driver spelled out for SQLAlchemy."""
    url = (settings or get_settings()).database_url.get_secret_value()
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("database_url: expected a postgresql:// URL")


def alembic_config(settings: Settings | None = None, *, with_url: bool = True) -> Config:
    """An Alembic config built in code (no ini file needed); the URL travels in ``attributes``
    so a password with ``%`` never meets configparser interpolation."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    if with_url:
        cfg.attributes["converge_url"] = sqlalchemy_url(settings)
    return cfg


def upgrade(settings: Settings | None = None, revision: str = HEAD) -> str | None:
    """Apply migrations up to ``revision``; returns the revision the database is at afterwards."""
    with _COMMAND_LOCK:
        command.upgrade(alembic_config(settings), revision)
    return current(settings)


def downgrade(settings: Settings | None = None, revision: str = "base") -> str | None:
    """Revert to ``revision`` (``base`` drops everything the migrations created)."""
    with _COMMAND_LOCK:
        command.downgrade(alembic_config(settings), revision)
    return current(settings)


def head() -> str | None:
    """The newest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config(with_url=False)).get_current_head()


def current(settings: Settings | None = None) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    engine = make_engine(sqlalchemy_url(settings))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
