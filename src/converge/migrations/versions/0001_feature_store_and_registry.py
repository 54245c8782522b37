"""Feature store (hash-partitioned JSONB) and model registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Choices measured in benchmarks/bench_ingest.py (see BENCHMARKS.md, "Feature ingest"):
- GIN on ``feature_vector`` uses ``jsonb_path_ops`` (containment ``@>`` and jsonpath ``@?``/``@@``,
  which is what feature lookups need; half the size of ``jsonb_ops``) with ``fastupdate=on`` and a
  4 MB pending list per partition: inserts append to the pending list and the merge into the main
  tree happens in bulk, by autovacuum (tuned below to run after inserts) or by the inserting
  backend when the list is full. A bigger list buys little more ingest speed and makes queries
  scan a longer unsorted list.
- Hash partitioning on ``entity_id`` spreads writes (range partitioning by time would put every
  write on one hot partition).
- ``embedding vector(N)`` only where pgvector is installable; skipped otherwise.
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy import text

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

PARTITIONS = 8
EMBEDDING_DIM = 384
GIN_OPCLASS = "jsonb_path_ops"
GIN_PENDING_LIST_KB = 4096


def _pgvector_available() -> bool:
    bind = op.get_bind()
    return bool(
        bind.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
    )


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE features (
            entity_id      text        NOT NULL,
            event_time     timestamptz NOT NULL,
            feature_vector jsonb       NOT NULL,
            ingested_at    timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT features_pkey PRIMARY KEY (entity_id, event_time),
            CONSTRAINT features_vector_is_object CHECK (jsonb_typeof(feature_vector) = 'object')
        ) PARTITION BY HASH (entity_id)
        """
    )
    for i in range(PARTITIONS):
        # Autovacuum after inserts too (PG 13+), so GIN pending lists are merged off the hot path.
        op.execute(
            f"""
            CREATE TABLE features_p{i} PARTITION OF features
                FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})
                WITH (autovacuum_vacuum_insert_scale_factor = 0.05,
                      autovacuum_vacuum_insert_threshold = 20000)
            """
        )
    op.execute(
        f"""
        CREATE INDEX features_vector_gin ON features
            USING gin (feature_vector {GIN_OPCLASS})
            WITH (fastupdate = on, gin_pending_list_limit = {GIN_PENDING_LIST_KB})
        """
    )
    # Point-in-time reads filter on ingested_at; BRIN is nearly free to maintain on an
    # append-mostly column.
    op.execute("CREATE INDEX features_ingested_brin ON features USING brin (ingested_at)")

    if _pgvector_available():
        # A savepoint, so a missing privilege for CREATE EXTENSION does not abort the migration.
        bind = op.get_bind()
        try:
            with bind.begin_nested():
                bind.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                bind.execute(text(f"ALTER TABLE features ADD COLUMN embedding vector({EMBEDDING_DIM})"))
        except Exception as exc:  # noqa: BLE001 - optional feature, report and go on
            log.warning("pgvector available but not usable, no embedding column: %s", exc)

    op.execute(
        """
        CREATE TABLE models (
            name        text        PRIMARY KEY
                        CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$' AND position('..' in name) = 0),
            description text,
            created_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE model_versions (
            name              text        NOT NULL REFERENCES models (name) ON DELETE RESTRICT,
            version           integer     NOT NULL CHECK (version >= 1),
            stage             text        NOT NULL DEFAULT 'staging'
                              CHECK (stage IN ('staging', 'production', 'archived')),
            artifact_uri      text        NOT NULL,
            sha256            char(64)    NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            metrics           jsonb       NOT NULL DEFAULT '{}'::jsonb,
            lineage           jsonb       NOT NULL DEFAULT '{}'::jsonb,
            validation_sample jsonb       NOT NULL DEFAULT '{}'::jsonb,
            report_uri        text,
            created_at        timestamptz NOT NULL DEFAULT now(),
            promoted_at       timestamptz,
            archived_at       timestamptz,
            rolled_back_at    timestamptz,
            PRIMARY KEY (name, version)
        )
        """
    )
    # The rule "one production version per model" is a constraint, not a convention.
    op.execute(
        "CREATE UNIQUE INDEX model_versions_one_production ON model_versions (name) "
        "WHERE stage = 'production'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS model_versions")
    op.execute("DROP TABLE IF EXISTS models")
    op.execute("DROP TABLE IF EXISTS features")
