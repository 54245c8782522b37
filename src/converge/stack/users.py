"""Postgres and PgBouncer refuse to run as root: when we are root, run them as an unprivileged user.

The stack's state directory may sit under a home directory that user cannot enter (root's home is
usually mode 0700). Rather than loosening permissions on directories we do not own, the demoted
process gets the single ambient capability to traverse and read them (CAP_DAC_READ_SEARCH), and
only then.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("postgres", "nobody")


@dataclass(frozen=True)
class RunAs:
    """Who runs a demoted service: uid/gid and the argv prefix that switches to them."""

    name: str
    uid: int
    gid: int

    def prefix(self, reach: Path) -> list[str]:
        """``setpriv`` argv that switches to this user and can still reach ``reach``."""
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise RuntimeError("running as root needs 'setpriv' (util-linux) to drop privileges")
        argv = [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"]
        if not reachable(reach, self.uid, self.gid):
            argv += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
        return [*argv, "--"]

    def own(self, path: Path) -> None:
        """Hand ``path`` and everything below it to this user."""
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)


def demoted_user() -> RunAs | None:
    """The user to run Postgres/PgBouncer as, or None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in CANDIDATES:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return RunAs(name, entry.pw_uid, entry.pw_gid)
    raise RuntimeError("running as root, and no unprivileged user (postgres, nobody) exists")


def reachable(path: Path, uid: int, gid: int) -> bool:
    """True when every ancestor of ``path`` is searchable by ``uid``/``gid`` (others or owner bits)."""
    path = path.resolve()
    for parent in [*reversed(path.parents)]:
        st = parent.stat()
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True
