"""Typed errors shared by every module, so callers branch on a class, not on a driver's message.

Two families matter to the functions: ``Unavailable`` (a dependency is down; answer 5xx so the
caller or Knative Eventing retries, which is safe because writes are idempotent) and everything
else (the request or the data is wrong; retrying will not help).
"""

from __future__ import annotations


class ConvergeError(Exception):
    """Base of every error converge raises on purpose."""

    #: Whether the same call may succeed if retried later (dependency down, timeout).
    retryable: bool = False


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means a dependency is down (retry later, answer 503) rather than a wrong
    request or datum: converge's retryable errors and the socket errors drivers let through."""
    return getattr(exc, "retryable", False) or isinstance(exc, ConnectionError | OSError)


# -- a dependency is down ---------------------------------------------------------------------
class Unavailable(ConvergeError):
    """A service converge talks to cannot be reached or failed mid-request."""

    retryable = True


class DatabaseUnavailable(Unavailable):
    """Postgres or PgBouncer refused, dropped or timed out a connection; nothing was committed
    unless the commit itself was acknowledged."""


class StorageUnavailable(Unavailable):
    """The S3-compatible object store cannot be reached or answered 5xx."""


class CacheUnavailable(Unavailable):
    """Redis cannot be reached."""


# -- the input is wrong -----------------------------------------------------------------------
class InvalidInput(ConvergeError, ValueError):
    """An argument or payload is malformed; the message names the field."""


class InvalidKey(InvalidInput):
    """An object-store key that could escape its prefix or is otherwise unsafe."""


# -- something does not exist / conflicts -----------------------------------------------------
class NotFound(ConvergeError, LookupError):
    """The thing asked for does not exist."""


class ModelNotFound(NotFound):
    """No such model, or no such version of it."""


class ArtifactNotFound(NotFound):
    """No object under that key."""


class Conflict(ConvergeError):
    """The request contradicts the current state (e.g. nothing to roll back to)."""


class NoRollbackTarget(Conflict):
    """Rollback asked for, but no version was production before the current one."""


class StaleVersion(Conflict):
    """A promotion that would move production backwards (or undo a rollback); nothing changed."""

    def __init__(self, message: str, production: int | None) -> None:
        super().__init__(message)
        self.production = production


# -- integrity --------------------------------------------------------------------------------
class IntegrityFailure(ConvergeError):
    """Data failed a checksum or a consistency check."""


class ArtifactIntegrityError(IntegrityFailure):
    """The downloaded bytes do not match the expected (or stored) sha256."""


__all__ = [
    "ArtifactIntegrityError",
    "ArtifactNotFound",
    "CacheUnavailable",
    "Conflict",
    "ConvergeError",
    "DatabaseUnavailable",
    "IntegrityFailure",
    "InvalidInput",
    "InvalidKey",
    "ModelNotFound",
    "NoRollbackTarget",
    "NotFound",
    "StaleVersion",
    "StorageUnavailable",
    "Unavailable",
]
