"""Demotion for Postgres/PgBouncer: who runs them and whether they can reach the state directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from converge.stack.users import demoted_user, reachable

STRANGER = (54321, 54321)  # a uid/gid that owns nothing here


def test_a_private_ancestor_blocks_other_users() -> None:
    base = Path(tempfile.mkdtemp())  # under the system temp dir, which everyone can search
    try:
        base.chmod(0o755)
        private = base / "private"
        inner = private / "state"
        inner.mkdir(parents=True)
        private.chmod(0o700)
        assert not reachable(inner, *STRANGER)
        private.chmod(0o711)  # search without listing is enough
        assert reachable(inner, *STRANGER)
    finally:
        shutil.rmtree(base)


def test_root_demotes_and_others_run_as_themselves() -> None:
    user = demoted_user()
    if os.geteuid() == 0:
        assert user is not None and user.uid != 0
        assert f"--reuid={user.uid}" in user.prefix(Path("/"))
    else:
        assert user is None
