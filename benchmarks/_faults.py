"""How a dependency or a function process fails and comes back, for :func:`_load.fault_run`.

Each kind is a pair of blocking callables, ``(fail, recover)``:

- ``stop``: the service's own graceful stop (SIGTERM, or SIGINT for Postgres), then a start.
- ``kill``: SIGKILL to the process and all its descendants, as a crashed container (no shutdown
  code runs, the kernel closes the sockets, Postgres recovers from its WAL on the next start),
  then a start.
- ``freeze``: SIGSTOP to the process and all its descendants, SIGCONT later. The kernel still accepts connections
  and buffers requests, but nothing answers: only a client's own timeouts notice.
- ``netem``: the link to the service (see ``_link.py``) gets 50 ms delay and 5 % loss in each
  direction, then is cleared. Only clients configured to go through the link see it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from typing import Any

import psutil

KINDS = ("stop", "kill", "freeze", "netem")
NETEM_DELAY_MS = 50.0
NETEM_LOSS = 0.05

Action = Callable[[], Any]


def process_fault(
    kind: str, pid: Callable[[], int | None], stop: Action, start: Action, reap: Action
) -> tuple[Action, Action]:
    """``pid()`` is the process group leader now; ``reap()`` collects it after a SIGKILL."""
    if kind == "stop":
        return stop, start
    if kind == "kill":

        def kill() -> None:
            leader = pid()
            assert leader is not None, "nothing to kill: the process is not running"
            signal_tree(process_tree(leader), signal.SIGKILL)
            reap()

        return kill, start
    if kind == "freeze":
        frozen: list[psutil.Process] = []

        def freeze() -> None:
            leader = pid()
            assert leader is not None, "nothing to freeze: the process is not running"
            frozen[:] = process_tree(leader)
            signal_tree(frozen, signal.SIGSTOP)

        def thaw() -> None:
            signal_tree(frozen, signal.SIGCONT)

        return freeze, thaw
    raise ValueError(f"not a process fault: {kind!r}")


def process_tree(leader: int) -> list[psutil.Process]:
    """The leader and every descendant. Not its process group: Postgres backends call setsid(),
    so a signal to the postmaster's group would leave them serving."""
    try:
        root = psutil.Process(leader)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_tree(tree: list[psutil.Process], sig: int) -> None:
    """Signal the leader first, so it cannot start new children in between."""
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)


def service_fault(kind: str, service: Any) -> tuple[Action, Action]:
    """A fault of a local stack service (``converge.stack``): it comes back on the same port."""
    return process_fault(kind, lambda: service.pid, service.stop, service.start, service.stop)


def link_fault(link: Any) -> tuple[Action, Action]:
    """The slow, lossy link (``_link.Link``) for a while, then a clean one again."""
    return (lambda: link.impair(NETEM_DELAY_MS, NETEM_LOSS)), link.clear


def combined(*faults: tuple[Action, Action]) -> tuple[Action, Action]:
    """Several things failing at once (e.g. every function process), recovering in order."""

    def fail() -> None:
        for f, _ in faults:
            f()

    def recover() -> None:
        for _, r in faults:
            r()

    return fail, recover


def function_fault(kind: str, fn: Any, start: Action) -> tuple[Action, Action]:
    """A fault of a function process (``converge.serving.testing.FunctionProcess``); ``start``
    brings it back and waits until it is ready."""

    def pid() -> int | None:
        return fn.proc.pid if fn.proc is not None and fn.proc.poll() is None else None

    return process_fault(kind, pid, fn.stop, start, lambda: fn.proc.wait(10))


def scenario(
    target: str,
    kind: str,
    *,
    services: dict[str, Any],
    functions: dict[str, Any],
    links: dict[str, Any],
    start_predict: Action,
) -> tuple[Action, Action]:
    """``(fail, recover)`` for ``target`` (a service name, or ``"functions"``: the predict and
    ingest processes together) and ``kind``. ``links`` has one link per service and, under
    ``"functions"``, the links in front of the functions; ``start_predict`` restarts predict and
    waits until it serves its model again."""
    if kind == "none":  # the control run: the same load and windows, nothing fails
        return (lambda: None), (lambda: None)
    if kind == "netem":
        chosen = links[target]
        return combined(*map(link_fault, chosen)) if isinstance(chosen, list) else link_fault(chosen)
    if target == "functions":
        predict, ingest = functions["predict"], functions["ingest"]
        return combined(
            function_fault(kind, predict, start_predict), function_fault(kind, ingest, ingest.start)
        )
    return service_fault(kind, services[target])
