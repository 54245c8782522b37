"""Knative Eventing's OIDC tokens, where the cluster has them: an alternative to signed events.

With the ``authentication-oidc`` feature (Eventing 1.14+) each sender (a Broker's filter for a
Trigger) gets a service-account token whose audience names the receiver, sent as ``Authorization:
Bearer <JWT>``. The receiver checks the token's signature against the cluster's JWKS, its
audience, issuer and expiry, and (recommended: any pod can mint a token for any audience with a
projected volume) that its subject is one of the expected senders.

A request without a bearer token still goes the signature way (:mod:`converge.event_signing`),
so the two can run side by side while a cluster migrates.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from converge.errors import PermissionDenied, Unavailable

ALGORITHMS = ["RS256", "ES256"]


class OidcVerifier:
    """Verifies bearer JWTs; the key set is fetched (and cached by PyJWT) from ``jwks_url``."""

    def __init__(
        self,
        audience: str,
        jwks_url: str,
        *,
        issuer: str = "",
        subjects: list[str] | None = None,
        token_path: str = "",
    ) -> None:
        from jwt import PyJWKClient

        self.audience = audience
        self.issuer = issuer
        self.subjects = set(subjects or [])
        self._client: Any = None
        self._file: Path | None = None
        if jwks_url.startswith("file://"):  # a key set mounted from a ConfigMap
            self._file = Path(jwks_url.removeprefix("file://"))
        else:
            headers = {}
            if token_path:  # the Kubernetes API serves its JWKS to authenticated service accounts
                headers["Authorization"] = f"Bearer {Path(token_path).read_text().strip()}"
            self._client = PyJWKClient(jwks_url, headers=headers, timeout=5)

    def _signing_key(self, token: str) -> Any:
        import jwt

        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        keys = jwt.PyJWKSet.from_json(self._file.read_text()).keys  # type: ignore[union-attr]
        for key in keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise jwt.InvalidTokenError(f"no key {kid!r} in the key set")

    def _claims(self, token: str) -> dict[str, Any]:
        import jwt

        try:
            key = self._signing_key(token)
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer or None,
                options={"require": ["exp", "aud", "sub"], "verify_iss": bool(self.issuer)},
            )
        except (jwt.PyJWKClientConnectionError, OSError):
            raise Unavailable("OIDC key set unavailable; retry later") from None
        except jwt.PyJWTError as exc:
            raise PermissionDenied(f"OIDC token refused: {exc}") from None

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or a 403 (503 when the key set cannot be fetched)."""
        claims = await asyncio.to_thread(self._claims, token)
        if self.subjects and claims.get("sub") not in self.subjects:
            raise PermissionDenied(f"OIDC token refused: subject {claims.get('sub')!r} may not send events")
        return claims
