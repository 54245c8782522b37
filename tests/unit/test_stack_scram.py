"""SCRAM secrets: the stack re-sets a role's password only when the stored secret disagrees."""

from __future__ import annotations

import base64

from converge.stack import scram


def test_a_secret_matches_its_password_only() -> None:
    secret = scram.make_secret("s3cret")
    assert scram.matches(secret, "s3cret")
    assert not scram.matches(secret, "s3cret ")
    assert not scram.matches(secret, "")


def test_format_is_the_one_postgres_stores() -> None:
    salt = b"0123456789abcdef"
    secret = scram.make_secret("pw", salt=salt, iterations=4096)
    method, params, keys = secret.split("$")
    assert method == "SCRAM-SHA-256"
    assert params == f"4096:{base64.b64encode(salt).decode()}"
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    assert len(stored) == len(server) == 32
    assert scram.make_secret("pw", salt=salt) == secret  # deterministic for a given salt


def test_fresh_salts_differ() -> None:
    assert scram.make_secret("pw") != scram.make_secret("pw")


def test_garbage_and_other_methods_never_match() -> None:
    assert not scram.matches(None, "pw")
    assert not scram.matches("md5abcdef", "pw")
    assert not scram.matches("SCRAM-SHA-256$x:y$z", "pw")
    real = scram.make_secret("pw")
    assert not scram.matches(real.replace("SCRAM-SHA-256", "SCRAM-SHA-1"), "pw")
