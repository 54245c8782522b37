"""All three functions and the admin API in one ASGI app, for ``converge serve`` and tests.

Composed from the functions' own declarations (:func:`.functions.declare`): a path goes to the
first function (predict, ingest, reload) that declares it, a mount's prefix to its owner, and
``POST /events`` to the function whose declared event types hold the event's type (predict, which
reads any, for the rest); each function still checks the event on its own. One runtime is shared,
so a reload swaps the model this process serves at once. With ``grpc_port`` set, the Open
Inference Protocol's gRPC service listens there too, on the same runtime.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from converge.errors import TooLarge
from converge.serving.runtime import Runtime
from converge.serving.status import RouteNotFound
from converge.serving.web.app import FunctionApp
from converge.serving.web.body import error_response
from converge.serving.web.functions import EVENTS, ROLES, declare
from converge.serving.web.router import Route, RouteTable


class Gateway:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.apps: dict[str, FunctionApp] = {}
        self.by_event: dict[str, FunctionApp] = {}
        self.mounts: list[tuple[str, FunctionApp]] = []
        owners: dict[str, FunctionApp] = {}
        for role in ROLES:
            declared = declare(role, runtime)
            app = self.apps[role] = FunctionApp(role, runtime, declared.routes, declared.mounts)
            for route in declared.routes:
                owners.setdefault(route.path, app)
            self.mounts += [(prefix, app) for prefix, _ in declared.mounts]
            self.by_event.update(dict.fromkeys(declared.events or (), app))
        # Matched by path only: the owner answers a wrong method with its own 405.
        self.table = RouteTable(Route("*", path, app) for path, app in owners.items())  # type: ignore[arg-type]
        self.grpc: Any = None

    async def _start_grpc(self) -> None:
        """The gRPC data plane on its own port, over this process's runtime (one model, one cache)."""
        port = self.runtime.settings.grpc_port
        if port:
            from converge.serving.v2grpc.servicer import serve

            self.grpc = await serve(self.runtime, self.runtime.settings.grpc_host, port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.rstrip("/") == EVENTS:
            await self._event(scope, receive, send)
            return
        found = self.table.match("*", path)
        if found is not None:
            await found[0](scope, receive, send)  # type: ignore[call-arg]
            return
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
        await error_response(RouteNotFound(f"{scope['method']} {path}: no such route"))(
            scope, receive, send
        )

    async def _event(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Peek at the CloudEvent type (header, or the structured envelope) and dispatch."""
        limit = self.runtime.settings.max_body_bytes
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > limit:
                await error_response(TooLarge(f"body larger than {limit} bytes"))(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        event_type = headers.get("ce-type")
        if event_type is None:
            try:
                envelope = orjson.loads(body)
                event_type = envelope.get("type") if isinstance(envelope, dict) else None
            except orjson.JSONDecodeError:
                event_type = None
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        target = self.by_event.get(event_type or "", self.apps["predict"])
        await target(scope, replay, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for role in ROLES:
                    await self.runtime.start(role)
                await self._start_grpc()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.grpc is not None:
                    await self.grpc.stop(5)
                await self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_gateway(runtime: Runtime | None = None) -> Gateway:
    return Gateway(runtime or Runtime())
