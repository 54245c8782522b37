"""Ingest by CloudEvent: a ledger of applied event ids and the write order of each feature row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

- ``ingest_events(source, event_id)``: a ``features.ingest`` event is recorded in the transaction
  that writes its rows, so a redelivery (same source and id) finds it and writes nothing. Signed
  events older than the freshness window are refused anyway, so the ingest function deletes
  ledger rows older than that (the index on ``received_at`` keeps that cheap).
- ``features.written_time`` / ``written_id``: the order that counts when two writes hit the same
  ``(entity_id, event_time)``: the CloudEvent's ``time`` then its ``id`` (HTTP ingest: the
  transaction's start time and an empty id). A write older than the stored one changes nothing.
  Nullable and without a default, so adding them rewrites no partition; a NULL is older than any
  write.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE features ADD COLUMN written_time timestamptz, ADD COLUMN written_id text")
    op.execute(
        """
        CREATE TABLE ingest_events (
            source      text        NOT NULL,
            event_id    text        NOT NULL,
            event_time  timestamptz NOT NULL,
            rows        integer     NOT NULL DEFAULT 0,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source, event_id)
        )
        """
    )
    op.execute("CREATE INDEX ingest_events_received ON ingest_events (received_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS ingest_events")
    op.execute("ALTER TABLE features DROP COLUMN IF EXISTS written_id, DROP COLUMN IF EXISTS written_time")
