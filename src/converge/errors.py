"""Typed errors shared by every module, so callers branch on a class, not on a driver's message.

The core raises these and knows nothing of HTTP or gRPC; the edge maps each class to a status once
(:mod:`converge.serving.status`). Two families matter most: ``Unavailable`` (a dependency is down;
answer 5xx so the caller or Knative Eventing retries, which is safe because writes are idempotent)
and everything else (the request, the credentials or the data are wrong; retrying will not help).
Messages are safe to show the caller: they name the field or the setting, never a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class ConvergeError(Exception):
    """Base of every error converge raises on purpose; ``detail`` lists per-field problems
    (``{"loc": [...], "msg": ..., "type": ...}``) where there are several."""

    #: Whether the same call may succeed if retried later (dependency down, timeout).
    retryable: bool = False

    def __init__(self, message: str = "", *, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means a dependency is down (retry later, answer 503) rather than a wrong
    request or datum: converge's retryable errors and the socket errors drivers let through."""
    return getattr(exc, "retryable", False) or isinstance(exc, ConnectionError | OSError)


@contextmanager
def outage_of(dependency: str, then: str = "retry later") -> Iterator[None]:
    """Turn a transient fault inside the block into :class:`Unavailable` naming ``dependency``
    (and what the caller should do, ``then``); any other error passes unchanged."""
    try:
        yield
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise Unavailable(f"{dependency} unavailable; {then}") from None


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


class NotReady(Unavailable):
    """The thing asked for exists but is not loaded yet (a model still starting)."""


# -- the caller is not who it must be ---------------------------------------------------------
class Unauthenticated(ConvergeError):
    """No credential, or one that cannot be read (a missing or malformed bearer token, an
    unsigned event)."""


class PermissionDenied(ConvergeError):
    """A credential that is wrong, expired or not allowed here, or none configured to check
    against (a write path is refused, never left open)."""


# -- the input is wrong -----------------------------------------------------------------------
class InvalidInput(ConvergeError, ValueError):
    """An argument or payload is malformed; the message names the field."""


class MalformedRequest(InvalidInput):
    """The request cannot be read at all: not JSON, not a CloudEvent, a broken tensor."""


class TooLarge(InvalidInput):
    """More bytes or rows than this deployment accepts in one request."""


class UnsupportedMediaType(InvalidInput):
    """A body in a format the route does not read."""


class ArtifactRejected(InvalidInput):
    """A registered artifact that fails its checks (validation sample, not a loadable MOJO)."""


class InvalidKey(InvalidInput):
    """An object-store key that could escape its prefix or is otherwise unsafe."""


# -- something does not exist / conflicts -----------------------------------------------------
class NotFound(ConvergeError, LookupError):
    """The thing asked for does not exist."""


class ModelNotFound(NotFound):
    """No such model, or no such version of it."""


class ArtifactNotFound(NotFound):
    """No object under that key."""


class EntityNotFound(NotFound):
    """No features stored for an entity id."""


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


class Internal(ConvergeError):
    """A fault of converge itself; the caller sees only that one happened."""


# -- pydantic's errors as ours ----------------------------------------------------------------
def invalid_fields(exc: ValidationError) -> InvalidInput:
    """Pydantic errors as one InvalidInput: the message names the first field, detail lists all."""
    detail = [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()  # FastAPI's RequestValidationError too
    ]
    first = detail[0] if detail else {"loc": [], "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    return InvalidInput(f"{where}: {first['msg']}{more}", detail=detail)


def validated(model: type, data: Any) -> Any:
    """``model`` validated from ``data``, or the InvalidInput naming the field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_fields(exc) from None


__all__ = [
    "ArtifactIntegrityError",
    "ArtifactNotFound",
    "ArtifactRejected",
    "CacheUnavailable",
    "Conflict",
    "ConvergeError",
    "DatabaseUnavailable",
    "EntityNotFound",
    "IntegrityFailure",
    "Internal",
    "InvalidInput",
    "InvalidKey",
    "MalformedRequest",
    "ModelNotFound",
    "NoRollbackTarget",
    "NotFound",
    "NotReady",
    "PermissionDenied",
    "StaleVersion",
    "StorageUnavailable",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedMediaType",
    "invalid_fields",
    "is_transient",
    "outage_of",
    "validated",
]
