"""The one place where converge's errors become protocol statuses: HTTP for the web edge, gRPC
codes for the V2 gRPC service.

The core raises domain errors (:mod:`converge.errors`); each class is looked up here along its
MRO, so a subclass answers like its nearest listed ancestor. A socket error that escaped a
service is an outage too (503, retry), and anything else is a fault of ours: 500 with no trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from converge import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Status:
    http: int
    #: a ``grpc.StatusCode`` member's name (grpc is imported only by the gRPC service)
    grpc: str
    message: str
    headers: dict[str, str] | None = None
    detail: list | None = None


class MethodNotAllowed(errors.ConvergeError):
    """The path exists, the method does not."""


class RouteNotFound(errors.NotFound):
    """No route has that path."""


# Most specific first is not needed: the lookup walks the raised class's MRO.
_STATUSES: dict[type[BaseException], tuple[int, str]] = {
    errors.Unauthenticated: (401, "UNAUTHENTICATED"),
    errors.PermissionDenied: (403, "PERMISSION_DENIED"),
    errors.MalformedRequest: (400, "INVALID_ARGUMENT"),
    errors.TooLarge: (413, "INVALID_ARGUMENT"),
    errors.UnsupportedMediaType: (415, "INVALID_ARGUMENT"),
    errors.InvalidInput: (422, "INVALID_ARGUMENT"),
    errors.IntegrityFailure: (422, "INVALID_ARGUMENT"),
    errors.NotFound: (404, "NOT_FOUND"),
    MethodNotAllowed: (405, "UNIMPLEMENTED"),
    errors.Conflict: (409, "FAILED_PRECONDITION"),
    errors.Unavailable: (503, "UNAVAILABLE"),
    errors.Internal: (500, "INTERNAL"),
}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def status_of(exc: BaseException) -> Status:
    """How ``exc`` is answered; unexpected errors are logged here with their trace."""
    for cls in type(exc).__mro__:
        found = _STATUSES.get(cls)
        if found is not None:
            http, grpc = found
            message = getattr(exc, "message", None) or str(exc)
            headers = _CHALLENGE if http == 401 else None
            return Status(http, grpc, message, headers, getattr(exc, "detail", None))
    if errors.is_transient(exc):
        log.warning("a dependency failed mid-request: %r", exc)
        return Status(503, "UNAVAILABLE", "a dependency is unavailable; retry later")
    log.error("unhandled error", exc_info=exc)
    return Status(500, "INTERNAL", "internal error")
