"""The local stack: Postgres, PgBouncer, Redis, S3 (SeaweedFS) and H2O as real local processes."""

from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.service import Service, ServiceError

__all__ = ["PgBouncer", "Postgres", "Service", "ServiceError"]
