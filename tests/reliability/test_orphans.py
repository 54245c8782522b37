"""Nothing outlives its parent: a function's helper processes exit when the function does.

Kubernetes stops a pod by signalling its main process (SIGTERM, then SIGKILL after the grace
period), and an OOM kill is a SIGKILL. The reload function starts its MOJO parser process at
start-up; whatever signal ends the function, the parser (80 MB) must not be left running.
Only the main process is signalled here, never its process group.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _wait_for_children(pid: int, timeout: float = 30.0) -> list[psutil.Process]:
    """The function's helper processes, once the parser process has started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _descendants(pid)
        if any("multiprocessing" in " ".join(c.cmdline()) for c in children):
            return children
        time.sleep(0.1)
    raise AssertionError(f"no parser process under {pid}: {[c.cmdline() for c in _descendants(pid)]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_helpers_exit_when_the_function_is_killed(start_function, settings, sig):
    fn = start_function("reload", settings)
    children = _wait_for_children(fn.proc.pid)

    os.kill(fn.proc.pid, sig)  # the main process only, as the kubelet does
    fn.proc.wait(30)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running after {sig.name}: {[p.cmdline() for p in alive]}"
    assert {p.pid for p in gone} == {c.pid for c in children}
