"""Bearer tokens on write routes: compared in constant time, never open when unset."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from converge.errors import PermissionDenied, Unauthenticated


def require_bearer(headers: Mapping[str, str], expected: str, credential: str) -> None:
    """Check ``Authorization: Bearer <token>`` against ``expected``.

    No credential configured refuses (403), never opens the route; a missing or malformed header
    is 401, a wrong token 403. ``credential`` names the setting in the messages.
    """
    if not expected:
        raise PermissionDenied(f"refused: {credential} is not configured")
    header = headers.get("authorization")
    if header is None:
        raise Unauthenticated("missing Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("malformed Authorization header: expected 'Bearer <token>'")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise PermissionDenied(f"invalid token: {credential} does not match")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
