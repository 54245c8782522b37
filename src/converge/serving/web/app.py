"""One function as an ASGI app: its declared routes, its mounts, probes' lifespan, errors.

The hot path stays lean on purpose (a dict lookup for the route, no middleware stack): predict
answers in well under a millisecond of framework time. Every response carries ``x-request-id``;
every error is an ErrorBody with the status :mod:`converge.serving.status` gives its class; an
unexpected fault is logged and answered 500 without a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from converge.errors import invalid_fields
from converge.serving.observability import ERRORS, configure_logging, new_request_id, request_id
from converge.serving.runtime import Runtime
from converge.serving.status import MethodNotAllowed, RouteNotFound
from converge.serving.web.body import error_response
from converge.serving.web.router import Route, RouteTable

log = logging.getLogger(__name__)


class FunctionApp:
    """Routes by (method, path); paths under a mount's prefix go to that ASGI app (the admin
    API's FastAPI app), anything else is a 404 (405 for a known path)."""

    def __init__(
        self,
        role: str,
        runtime: Runtime,
        routes: Sequence[Route],
        mounts: Sequence[tuple[str, ASGIApp]] = (),
    ) -> None:
        self.role = role
        self.runtime = runtime
        self.table = RouteTable(routes)
        self.mounts = tuple(mounts)
        configure_logging()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.role not in self.runtime._started:
            await self.runtime.start(self.role)
        method, path = scope["method"], scope["path"]
        found = self.table.match(method, path)
        if found is None:
            for prefix, app in self.mounts:
                if path == prefix or path.startswith(prefix + "/"):
                    try:
                        await app(scope, receive, send)
                    except Exception:  # Starlette has answered 500 already, then re-raised
                        log.exception("unhandled error on %s %s", method, path)
                    return
        handler, params = found if found is not None else (None, {})
        scope["path_params"] = params
        request = Request(scope, receive)
        rid = new_request_id(request.headers.get("x-request-id"))
        token = request_id.set(rid)
        try:
            if handler is None:
                miss = MethodNotAllowed if self.table.knows_path(path) else RouteNotFound
                raise miss(f"{method} {path.rstrip('/') or '/'}: no such route")
            response: Response = await handler(request)
        except ValidationError as exc:
            response = error_response(invalid_fields(exc))
        except Exception as exc:  # noqa: BLE001 - every error answered by its class
            response = error_response(exc)
        finally:
            request_id.reset(token)
        if response.status_code >= 400:
            ERRORS.labels(status=str(response.status_code)).inc()
        response.headers["x-request-id"] = rid
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.runtime.start(self.role)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
