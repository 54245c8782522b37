"""All three functions and the admin API in one ASGI app, for ``converge serve`` and tests.

Routes: ``POST /predict`` (and the Open Inference Protocol under ``/v2``), ``POST /ingest``, ``POST /events`` (CloudEvents: ``features.ingest``
goes to ingest, ``model.published`` to reload, anything else to predict; each function checks the
event's signature on its own ``/events`` route), ``/admin/*`` and
``/docs``, and the probes (readiness is predict's: a model is loaded). One runtime is shared, so a
reload swaps the model this process serves at once. With ``grpc_port`` set, the Open Inference
Protocol's gRPC service listens there too, on the same runtime.
"""

from __future__ import annotations

from typing import Any

import orjson

from starlette.types import Receive, Scope, Send

from converge.contracts import EVENT_FEATURES_INGEST, EVENT_MODEL_PUBLISHED
from converge.serving.apps import ingest_app, predict_app, reload_app
from converge.serving.http import ServingError, error_response
from converge.serving.runtime import Runtime


class Gateway:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.predict = predict_app(runtime)
        self.ingest = ingest_app(runtime)
        self.reload = reload_app(runtime)
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
        if path == "/events" or path.startswith("/events/"):
            await self._event(scope, receive, send)
        elif path.startswith("/ingest"):
            await self.ingest(scope, receive, send)
        elif path.startswith(("/predict", "/v2")) or path in (
            "/healthz",
            "/readyz",
            "/metrics",
            "/",
        ):
            await self.predict(scope, receive, send)
        else:
            await self.reload(scope, receive, send)

    async def _event(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Peek at the CloudEvent type (header, or the structured envelope) and dispatch."""
        limit = self.runtime.settings.max_body_bytes
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > limit:
                await error_response(ServingError(413, f"body larger than {limit} bytes"))(
                    scope, receive, send
                )
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

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        if event_type == EVENT_FEATURES_INGEST:
            target = self.ingest
        elif event_type == EVENT_MODEL_PUBLISHED:
            target = self.reload
        else:
            target = self.predict
        await target(scope, replay, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for role in ("predict", "ingest", "reload"):
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
