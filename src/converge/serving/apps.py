"""One small ASGI app per function: its routes, CloudEvents, probes and metrics.

CloudEvents are accepted on one route only, ``POST /events``; a request elsewhere is routed by its
method and path whatever ``ce-*`` headers it carries, so an event cannot slip past a route's own
authentication. Every write is authenticated: ``model.published`` and ``features.ingest`` events
by their signature (:mod:`converge.event_signing`) or, where configured, Knative's OIDC token
(:mod:`.event_oidc`); ``POST /ingest`` by the ingest token; the admin API by the admin token.

The hot path stays lean on purpose (a dict lookup for the route, no middleware stack): predict
answers in well under a millisecond of framework time. Every response carries ``x-request-id``;
every error is an ErrorBody; an unexpected fault is logged and answered 500 without a trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from converge.contracts import (
    EVENT_FEATURES_INGEST,
    EVENT_MODEL_PUBLISHED,
    EVENT_ROLLOUT_DECIDED,
    ModelPublished,
    PredictRequest,
    RolloutDecided,
)
from converge.event_signing import parse_time
from converge.features import IngestEvent
from converge.serving.event_oidc import bearer_token
from converge.serving.events import Event, authenticate, parse_event
from converge.serving.http import (
    JSONResponse,
    ServingError,
    error_response,
    parse_json,
    read_body,
    require_bearer,
    validation_error,
)
from converge.serving.ingest import parse_batch
from converge.serving.observability import (
    ERRORS,
    PREDICT_LATENCY,
    configure_logging,
    metrics_payload,
    new_request_id,
    request_id,
)
from converge.serving.runtime import Runtime

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


EVENT_ROUTE = ("POST", "/events")


class FunctionApp:
    """Routes by (method, path); unknown paths fall through to ``fallback`` or a 404."""

    def __init__(
        self,
        role: str,
        runtime: Runtime,
        routes: dict[tuple[str, str], Handler],
        *,
        fallback: Any = None,
    ) -> None:
        self.role = role
        self.runtime = runtime
        self.routes = routes
        self.fallback = fallback
        self.limit = runtime.settings.max_body_bytes
        configure_logging()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.role not in self.runtime._started:
            await self.runtime.start(self.role)
        request = Request(scope, receive)
        path = scope["path"].rstrip("/") or "/"
        handler = self.routes.get((scope["method"], path))
        if handler is None and self.fallback is not None:
            try:
                await self.fallback(scope, receive, send)
            except Exception:  # Starlette has answered 500 already, then re-raised
                log.exception("unhandled error on %s %s", scope["method"], path)
            return
        rid = new_request_id(request.headers.get("x-request-id"))
        token = request_id.set(rid)
        try:
            if handler is None:
                known = {p for _, p in self.routes}
                status = 405 if path in known else 404
                response: Response = error_response(
                    ServingError(status, f"{scope['method']} {path}: no such route")
                )
            else:
                response = await handler(request)
        except ServingError as exc:
            response = error_response(exc, headers=getattr(exc, "headers", None))
        except ValidationError as exc:
            response = error_response(validation_error(exc))
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], path)
            response = error_response(ServingError(500, "internal error"))
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


def _probes(
    runtime: Runtime, ready: Callable[[], bool], reason: Callable[[], str | None] = lambda: None
) -> dict[tuple[str, str], Handler]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if ready():
            return JSONResponse({"status": "ready"})
        why = reason()
        return JSONResponse({"status": "not ready", **({"reason": why} if why else {})}, 503)

    async def metrics(request: Request) -> Response:
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    return {("GET", "/healthz"): healthz, ("GET", "/readyz"): readyz, ("GET", "/metrics"): metrics}


async def _json_body(request: Request, limit: int) -> Any:
    content_type = request.headers.get("content-type", "application/json").lower()
    if "json" not in content_type:
        raise ServingError(415, f"Content-Type {content_type!r}: send application/json")
    return parse_json(await read_body(request, limit))


# -- predict ----------------------------------------------------------------------------------
def predict_app(runtime: Runtime) -> FunctionApp:
    """``POST /`` or ``/predict``; probes; readiness waits for the default model."""
    settings = runtime.settings

    def ready() -> bool:
        return runtime.holder.get(settings.default_model) is not None

    def reason() -> str | None:
        sync = runtime.replica_sync_if_started
        return None if sync is None else sync.problem

    async def score(data: Any) -> Response:
        started = time.perf_counter()
        try:
            req = PredictRequest.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from None
        service = await runtime.predict_service()
        result = await service.predict_dict(req)
        PREDICT_LATENCY.observe(time.perf_counter() - started)
        return JSONResponse(result)

    async def predict(request: Request) -> Response:
        return await score(await _json_body(request, settings.max_body_bytes))

    async def predict_event(request: Request) -> Response:
        event = parse_event(request.headers, await read_body(request, settings.max_body_bytes))
        return await score(event.data)

    routes = {
        ("POST", "/"): predict,
        ("POST", "/predict"): predict,
        EVENT_ROUTE: predict_event,  # a read: no signature asked, like POST /predict
        **_probes(runtime, ready, reason),
    }
    return FunctionApp("predict", runtime, routes, fallback=_built_on_first_call(_open_inference, runtime))


def _open_inference(runtime: Runtime) -> Any:
    from converge.serving.open_inference import open_inference_app

    return open_inference_app(runtime)


def _built_on_first_call(build: Callable[[Runtime], Any], runtime: Runtime) -> Any:
    """An ASGI app built by its first request: predict's start does not import the V2 routes'
    models (a few ms) for requests that may never come."""
    app: Any = None

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal app
        if app is None:
            app = build(runtime)
        await app(scope, receive, send)

    return call


# -- reload -----------------------------------------------------------------------------------
def _model_of(model: type, data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def _signed_event(
    request: Request, runtime: Runtime, keys: dict[str, tuple[str, str]]
) -> Event:
    """A write event of one of ``keys``' types (type -> key, the key's name for messages),
    authenticated by Knative's OIDC token (where configured and sent) or else by its signature
    with that type's own key."""
    settings = runtime.settings
    token = bearer_token(request.headers.get("authorization"))
    verifier = runtime.event_oidc
    if token is not None and verifier is not None:
        await verifier.verify(token)  # before the body is read
    event = parse_event(
        request.headers, await read_body(request, settings.max_body_bytes), expected=set(keys)
    )
    if token is None or verifier is None:
        key, credential = keys[event.type]
        authenticate(event, key, credential, settings.event_max_age_s)
    return event


def reload_app(runtime: Runtime) -> FunctionApp:
    """Signed ``model.published`` and ``rollout.decided`` CloudEvents on ``POST /events``; the
    rest is the admin API."""
    from converge.serving.admin import admin_app

    settings = runtime.settings
    keys = {
        EVENT_MODEL_PUBLISHED: (settings.publish_key.get_secret_value(),
                                "the publish key (CONVERGE_PUBLISH_KEY)"),
        EVENT_ROLLOUT_DECIDED: (settings.rollout_key.get_secret_value(),
                                "the rollout key (CONVERGE_ROLLOUT_KEY)"),
    }  # fmt: skip

    async def on_event(request: Request) -> Response:
        event = await _signed_event(request, runtime, keys)
        if event.type == EVENT_ROLLOUT_DECIDED:
            return JSONResponse(await _carry_out(runtime, _model_of(RolloutDecided, event.data)))
        service = await runtime.reload_service()
        return JSONResponse(await service.reload(_model_of(ModelPublished, event.data), event=True))

    routes = {EVENT_ROUTE: on_event, **_probes(runtime, lambda: True)}
    return FunctionApp("reload", runtime, routes, fallback=admin_app(runtime))


async def _carry_out(runtime: Runtime, decided: RolloutDecided) -> Any:
    """Promote what the rollouts table says was decided; the event only names the row, so a
    redelivered or replayed one finds it promoted already and changes nothing."""
    rollout = await (await runtime.rollouts()).get(decided.rollout_id)
    if rollout is None or rollout.name != decided.name:
        raise ServingError(404, f"rollout_id: no rollout {decided.rollout_id} of {decided.name!r}")
    if rollout.state != "promote":
        return {"outcome": "ignored", "rollout_id": rollout.id, "state": rollout.state}
    return await runtime.carry_out_promotion(rollout)


# -- ingest -----------------------------------------------------------------------------------
def ingest_app(runtime: Runtime) -> FunctionApp:
    """``POST /`` or ``/ingest`` (JSON, ingest token) and signed ``features.ingest`` CloudEvents
    on ``POST /events``; one credential, the ingest token, for both."""
    settings = runtime.settings
    credential = "the ingest token (CONVERGE_INGEST_TOKEN)"

    async def write(data: Any, event: IngestEvent | None = None) -> Response:
        batch = parse_batch(data)
        service = await runtime.ingest_service()
        return JSONResponse(await service.ingest(batch, event))

    async def ingest(request: Request) -> Response:
        require_bearer(request.headers, settings.ingest_token.get_secret_value(), credential)
        return await write(await _json_body(request, settings.max_body_bytes))

    async def on_event(request: Request) -> Response:
        keys = {EVENT_FEATURES_INGEST: (settings.ingest_token.get_secret_value(), credential)}
        event = await _signed_event(request, runtime, keys)
        # A signed event has a verified, fresh time; an OIDC-authenticated one may have none:
        # then the time it arrived orders it.
        try:
            when = parse_time(event.time) if event.time else datetime.now(UTC)
        except ValueError:
            raise ServingError(400, f"CloudEvent time {event.time!r} is not an RFC 3339 time") from None
        ref = IngestEvent(event.source, event.id, when)
        return await write(event.data, ref)

    routes = {
        ("POST", "/"): ingest,
        ("POST", "/ingest"): ingest,
        EVENT_ROUTE: on_event,
        **_probes(runtime, lambda: True),
    }
    return FunctionApp("ingest", runtime, routes)
