"""Least privilege in the database: what the predict and ingest roles may do.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

The application role (the one that migrates, and that training and the reload function use) owns
the tables and writes the registry. Two login roles named after it do less, so a stolen
credential of a function cannot do what that function does not:

- ``<owner>_predict``: reads features and the registry, writes nothing;
- ``<owner>_ingest``: writes features and the ingest ledger, reads nothing else.

The roles are named after the application role: the one running this migration, unless
``CONVERGE_DATABASE_APP_ROLE`` names another (the chart migrates as a separate schema-owning role).
The roles themselves (and their passwords) belong to the deployment: the local stack creates them
when Postgres starts, the chart in its init script, Terraform beside the managed database. Where
they do not exist this migration grants nothing and says so; run it again after creating them.
"""

from __future__ import annotations

import logging
import os

from alembic import op
from sqlalchemy import text

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

GRANTS = {
    "predict": ["GRANT SELECT ON features, models, model_versions TO {role}"],
    "ingest": [
        "GRANT SELECT, INSERT, UPDATE ON features TO {role}",
        "GRANT SELECT, INSERT, DELETE ON ingest_events TO {role}",
    ],
}
REVOKES = "REVOKE ALL ON features, models, model_versions, ingest_events FROM {role}"


def _roles() -> dict[str, str]:
    """Service role -> quoted role name, for the roles that exist."""
    bind = op.get_bind()
    owner = os.environ.get("CONVERGE_DATABASE_APP_ROLE") or bind.execute(
        text("SELECT current_user")
    ).scalar()
    found = {}
    for service in GRANTS:
        name = f"{owner}_{service}"
        if bind.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).scalar():
            found[service] = bind.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar()
        else:
            log.warning("role %s does not exist: no grants for the %s function", name, service)
    return found


def upgrade() -> None:
    for service, role in _roles().items():
        for statement in GRANTS[service]:
            op.execute(statement.format(role=role))


def downgrade() -> None:
    for role in _roles().values():
        op.execute(REVOKES.format(role=role))
