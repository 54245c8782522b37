"""Alembic environment: a psycopg 3 engine that is safe behind PgBouncer transaction pooling."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from converge.migrations import make_engine

# Any constant works; it only has to be the same for every converge migrator.
MIGRATION_LOCK_ID = 0x636F6E76  # "conv"


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.attributes["converge_url"],
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(context.config.attributes["converge_url"])
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                # Transaction-scoped: session advisory locks are meaningless under PgBouncer.
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_ID})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
