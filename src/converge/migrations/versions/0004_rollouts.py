"""Canary and shadow rollouts: one row per model while a candidate version is being tried.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

``rollouts`` holds the rollout in progress (``state = 'active'``) and the last ones decided. The
admin API (the application role) starts and stops them. Predict replicas route by it and end it
when the candidate crosses a threshold, so the predict role may read it and write only the
decision's columns (``state``, ``reason``, ``stats``, ``decided_at``): never the candidate, the
share or the thresholds, and nothing else in the registry.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_grants = importlib.import_module("converge.migrations.versions.0003_service_role_grants")

PREDICT_GRANTS = [
    "GRANT SELECT ON rollouts TO {role}",
    "GRANT UPDATE (state, reason, stats, decided_at) ON rollouts TO {role}",
]


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rollouts (
            id          bigserial   PRIMARY KEY,
            name        text        NOT NULL REFERENCES models (name) ON DELETE CASCADE,
            candidate   integer     NOT NULL,
            baseline    integer     NOT NULL,
            mode        text        NOT NULL CHECK (mode IN ('canary', 'shadow')),
            percent     real        NOT NULL CHECK (percent >= 0 AND percent <= 100),
            thresholds  jsonb       NOT NULL DEFAULT '{}',
            state       text        NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'promote', 'promoted', 'rolled_back', 'stopped')),
            reason      text,
            stats       jsonb       NOT NULL DEFAULT '{}',
            created_at  timestamptz NOT NULL DEFAULT now(),
            decided_at  timestamptz,
            FOREIGN KEY (name, candidate) REFERENCES model_versions (name, version),
            FOREIGN KEY (name, baseline) REFERENCES model_versions (name, version)
        )
        """
    )
    # At most one rollout in progress per model.
    op.execute("CREATE UNIQUE INDEX rollouts_one_active ON rollouts (name) WHERE state = 'active'")
    roles = _grants._roles()
    if "predict" in roles:
        for statement in PREDICT_GRANTS:
            op.execute(statement.format(role=roles["predict"]))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS rollouts")
