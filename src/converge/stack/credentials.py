"""The local stack's credentials: generated once per state directory, kept in a 0600 file.

They are the ones a cluster keeps in Kubernetes Secrets: the admin token (admin API), the publish
key (signs ``model.published``), the ingest token (HTTP ingest, signs ``features.ingest``), the rollout key (signs ``rollout.decided``) and the
secret of the object store's read-only identity.
``converge up`` puts them in ``stack.env`` with the addresses, so ``converge serve``, training and
``converge ingest`` on this machine agree without exports; they survive ``converge down``, like
the data.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

CREDENTIALS = (
    "CONVERGE_ADMIN_TOKEN",
    "CONVERGE_PUBLISH_KEY",
    "CONVERGE_INGEST_TOKEN",
    "CONVERGE_ROLLOUT_KEY",  # signs rollout.decided (predict) and checks it (reload)
    "CONVERGE_S3_READER_SECRET_KEY",  # the object store's read-only identity (the functions')
)
FILE = "credentials.env"


def _read(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, _, value in pairs}


def load_or_create(state_dir: Path) -> dict[str, str]:
    """The credentials of ``state_dir``; any that are missing are generated and saved."""
    path = Path(state_dir) / FILE
    known = _read(path) if path.exists() else {}
    values = {name: known.get(name) or secrets.token_urlsafe(32) for name in CREDENTIALS}
    if values != known:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(f"{name}={values[name]}\n" for name in CREDENTIALS))
        os.replace(tmp, path)
    return values
