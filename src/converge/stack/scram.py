"""SCRAM-SHA-256 secrets in Postgres' stored format (``SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>``).

Checking a password against the stored secret lets set-up leave an unchanged password alone:
re-setting it would draw a new salt and invalidate the copy in PgBouncer's userlist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def make_secret(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """A secret Postgres and PgBouncer accept (the password is not SASLprep-normalised)."""
    salt = salt if salt is not None else os.urandom(16)
    stored, server = _keys(password, salt, iterations)
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def matches(secret: str | None, password: str) -> bool:
    """True when ``secret`` was made from ``password``."""
    try:
        method, rest = (secret or "").split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored, server = (base64.b64decode(k) for k in keys.split(":", 1))
        if method != "SCRAM-SHA-256":
            return False
        want_stored, want_server = _keys(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(stored, want_stored) and hmac.compare_digest(server, want_server)
