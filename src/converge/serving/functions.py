"""Hand a functions-framework request to this process's function app, unchanged.

functions-framework's ``aio`` wrapper calls the target with a Starlette request and sends back the
response it returns. :class:`Forward` is a response whose ``__call__`` runs our ASGI app with the
same scope and receive channel, so routing, bodies, probes and CloudEvents are handled once, in
:mod:`converge.serving.apps`, for functions-framework and for the local gateway alike.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from converge.serving.apps import FunctionApp, ingest_app, predict_app, reload_app
from converge.serving.runtime import Runtime

_runtime: Runtime | None = None
_apps: dict[str, FunctionApp] = {}
_BUILDERS = {"predict": predict_app, "reload": reload_app, "ingest": ingest_app}


def function_app(role: str) -> FunctionApp:
    """The process-wide app of one function (one runtime per process)."""
    global _runtime
    if role not in _apps:
        if _runtime is None:
            _runtime = Runtime()
        _apps[role] = _BUILDERS[role](_runtime)
    return _apps[role]


class Forward(Response):
    def __init__(self, app: Any, request: Request) -> None:
        super().__init__()
        self.app = app
        self._receive = request.receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, self._receive, send)


def forward(role: str, request: Request) -> Response:
    return Forward(function_app(role), request)
