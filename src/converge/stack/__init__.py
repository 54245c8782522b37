"""The local stack: Postgres, PgBouncer, Redis, S3 (SeaweedFS) and H2O as real local processes."""

from converge.stack.h2o import H2O
from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.redis import Redis
from converge.stack.s3 import S3
from converge.stack.service import Service, ServiceError
from converge.stack.stack import Stack

__all__ = ["H2O", "S3", "PgBouncer", "Postgres", "Redis", "Service", "ServiceError", "Stack"]
