"""The three functions' HTTP surfaces, declared once: routes, mounts and accepted event types.

CloudEvents are accepted on one route only, ``POST /events``; a request elsewhere is routed by its
method and path whatever ``ce-*`` headers it carries, so an event cannot slip past a route's own
authentication. Every write is authenticated: ``model.published``, ``rollout.decided`` and
``features.ingest`` events by their signature (:mod:`converge.event_signing`) or, where
configured, Knative's OIDC token (:mod:`.event_oidc`); ``POST /ingest`` by the ingest token; the
admin API by the admin token. The image's functions-framework targets and the local gateway
(:mod:`.gateway`) are both built from :func:`declare`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from converge.contracts import (
    EVENT_FEATURES_INGEST,
    EVENT_MODEL_PUBLISHED,
    EVENT_ROLLOUT_DECIDED,
    ModelPublished,
    PredictRequest,
    RolloutDecided,
)
from converge.errors import MalformedRequest, NotFound, validated
from converge.event_signing import parse_time
from converge.features import IngestEvent
from converge.serving.ingest import parse_batch
from converge.serving.observability import PREDICT_LATENCY, metrics_payload
from converge.serving.runtime import Runtime
from converge.serving.web import v2
from converge.serving.web.app import FunctionApp
from converge.serving.web.auth import bearer_token, require_bearer
from converge.serving.web.body import JSONResponse, json_body, read_body
from converge.serving.web.events import Event, authenticate, parse_event
from converge.serving.web.router import Route

EVENTS = "/events"
ROLES = ("predict", "ingest", "reload")


@dataclass(frozen=True)
class Declared:
    """What one function serves."""

    role: str
    routes: list[Route]
    #: path prefixes served by another ASGI app (the admin API)
    mounts: list[tuple[str, ASGIApp]] = field(default_factory=list)
    #: CloudEvent types its ``POST /events`` accepts (None: any, read-only)
    events: frozenset[str] | None = None


def declare(role: str, runtime: Runtime) -> Declared:
    return {"predict": _predict, "ingest": _ingest, "reload": _reload}[role](runtime)


def build(role: str, runtime: Runtime) -> FunctionApp:
    declared = declare(role, runtime)
    return FunctionApp(role, runtime, declared.routes, declared.mounts)


def _probes(runtime: Runtime, ready: Callable[[], bool],
            reason: Callable[[], str | None] = lambda: None) -> list[Route]:  # fmt: skip
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

    return [Route("GET", "/healthz", healthz), Route("GET", "/readyz", readyz),
            Route("GET", "/metrics", metrics)]  # fmt: skip


# -- predict ----------------------------------------------------------------------------------
def _predict(runtime: Runtime) -> Declared:
    """``POST /`` or ``/predict``, the Open Inference Protocol under ``/v2``, probes; readiness
    waits for the default model. Its ``/events`` is a read: no signature asked, as for predict."""
    settings = runtime.settings

    def ready() -> bool:
        return runtime.holder.get(settings.default_model) is not None

    def reason() -> str | None:
        sync = runtime.replica_sync_if_started
        return None if sync is None else sync.problem

    async def score(data: Any) -> Response:
        started = time.perf_counter()
        req = validated(PredictRequest, data)
        service = await runtime.predict_service()
        result = await service.predict_dict(req)
        PREDICT_LATENCY.observe(time.perf_counter() - started)
        return JSONResponse(result)

    async def predict(request: Request) -> Response:
        return await score(await json_body(request, settings.max_body_bytes))

    async def predict_event(request: Request) -> Response:
        event = parse_event(request.headers, await read_body(request, settings.max_body_bytes))
        return await score(event.data)

    routes = [
        Route("POST", "/", predict),
        Route("POST", "/predict", predict),
        Route("POST", EVENTS, predict_event),
        *v2.routes(runtime),
        *_probes(runtime, ready, reason),
    ]
    return Declared("predict", routes)


# -- reload -----------------------------------------------------------------------------------
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


def _reload(runtime: Runtime) -> Declared:
    """Signed ``model.published`` and ``rollout.decided`` CloudEvents on ``POST /events``; the
    admin API (and its OpenAPI pages) mounted beside them."""
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
            return JSONResponse(await _carry_out(runtime, validated(RolloutDecided, event.data)))
        service = await runtime.reload_service()
        return JSONResponse(await service.reload(validated(ModelPublished, event.data), event=True))

    admin = admin_app(runtime)
    return Declared(
        "reload",
        [Route("POST", EVENTS, on_event), *_probes(runtime, lambda: True)],
        mounts=[(prefix, admin) for prefix in ("/admin", "/docs", "/openapi.json", "/redoc")],
        events=frozenset(keys),
    )


async def _carry_out(runtime: Runtime, decided: RolloutDecided) -> Any:
    """Promote what the rollouts table says was decided; the event only names the row, so a
    redelivered or replayed one finds it promoted already and changes nothing."""
    rollout = await (await runtime.rollouts()).get(decided.rollout_id)
    if rollout is None or rollout.name != decided.name:
        raise NotFound(f"rollout_id: no rollout {decided.rollout_id} of {decided.name!r}")
    if rollout.state != "promote":
        return {"outcome": "ignored", "rollout_id": rollout.id, "state": rollout.state}
    return await runtime.carry_out_promotion(rollout)


# -- ingest -----------------------------------------------------------------------------------
def _ingest(runtime: Runtime) -> Declared:
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
        return await write(await json_body(request, settings.max_body_bytes))

    async def on_event(request: Request) -> Response:
        keys = {EVENT_FEATURES_INGEST: (settings.ingest_token.get_secret_value(), credential)}
        event = await _signed_event(request, runtime, keys)
        # A signed event has a verified, fresh time; an OIDC-authenticated one may have none:
        # then the time it arrived orders it.
        try:
            when = parse_time(event.time) if event.time else datetime.now(UTC)
        except ValueError:
            raise MalformedRequest(f"CloudEvent time {event.time!r} is not an RFC 3339 time") from None
        return await write(event.data, IngestEvent(event.source, event.id, when))

    routes = [
        Route("POST", "/", ingest),
        Route("POST", "/ingest", ingest),
        Route("POST", EVENTS, on_event),
        *_probes(runtime, lambda: True),
    ]
    return Declared("ingest", routes, events=frozenset({EVENT_FEATURES_INGEST}))


# -- the image's entry points -----------------------------------------------------------------
_runtime: Runtime | None = None
_apps: dict[str, FunctionApp] = {}


def function_app(role: str) -> FunctionApp:
    """The process-wide app of one function (one runtime per process)."""
    global _runtime
    if role not in _apps:
        if _runtime is None:
            _runtime = Runtime()
        _apps[role] = build(role, _runtime)
    return _apps[role]


class Forward(Response):
    """A response whose ``__call__`` runs our ASGI app with functions-framework's scope and
    receive channel, so routing, bodies, probes and CloudEvents are handled once, here."""

    def __init__(self, app: ASGIApp, request: Request) -> None:
        super().__init__()
        self.app = app
        self._receive = request.receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, self._receive, send)


def forward(role: str, request: Request) -> Response:
    """Hand a functions-framework request to this process's function app, unchanged."""
    return Forward(function_app(role), request)
