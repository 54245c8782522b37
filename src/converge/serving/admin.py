"""The admin and registry API (FastAPI, OpenAPI at ``/docs``), behind a bearer token.

No token configured means the admin endpoints are refused (403), never open. A missing or
malformed ``Authorization`` header is 401 (with ``WWW-Authenticate: Bearer``), a wrong token 403;
tokens are compared in constant time. Promotion goes through the same verify-and-validate path as
a reload, so the API cannot put an unchecked artifact into production.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import Base64Bytes, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from converge.contracts import MAX_VERSION, ErrorBody, ModelName, ModelPublished, ReloadResult
from converge.errors import ConvergeError, MalformedRequest, NotFound, invalid_fields, outage_of
from converge.mojo_publish import MAX_VALIDATION_ROWS
from converge.rollouts import Mode, Thresholds
from converge.serving.runtime import Runtime
from converge.serving.status import MethodNotAllowed, RouteNotFound
from converge.serving.web.auth import require_bearer
from converge.serving.web.body import BodyLimit, JSONResponse, error_response

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422, 503)
}


class Publish(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mojo: Base64Bytes = Field(description="the MOJO zip, base64")
    validation_rows: list[dict[str, Any]] | None = Field(
        default=None, min_length=1, max_length=MAX_VALIDATION_ROWS,
        description="rows whose answers genmodel computes for the reload's check "
        "(default: rows built from the MOJO's schema)",
    )  # fmt: skip
    description: str | None = Field(default=None, max_length=500)


class StartRollout(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=MAX_VERSION, description="the candidate")
    mode: Mode = "canary"
    percent: float = Field(10.0, gt=0, lt=100, description="canary: share of requests, percent")
    thresholds: Thresholds = Field(default_factory=Thresholds)


class Promote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=MAX_VERSION)


def _bearer_guard(runtime: Runtime) -> Any:
    def require_token(request: Request) -> None:
        expected = runtime.settings.admin_token.get_secret_value()
        require_bearer(request.headers, expected, "the admin token (CONVERGE_ADMIN_TOKEN)")

    return require_token


class _TokenFirst:
    """Check the token on ``/admin`` before FastAPI reads the body: it parses bodies before it
    runs dependencies, so a malformed body would otherwise get a 400 without any credentials."""

    def __init__(self, app: Any, require: Any) -> None:
        self.app = app
        self.require = require

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/admin"):
            try:
                self.require(Request(scope))
            except ConvergeError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)



def admin_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="converge admin",
        version="1",
        description="Model registry and reload control for the converge functions.",
        responses=_ERRORS,
    )
    require_token = _bearer_guard(runtime)
    guard = Depends(require_token)

    async def _error(request: Request, exc: Exception) -> JSONResponse:
        """Domain errors by their class, an escaped outage 503."""
        return error_response(exc)

    for expected in (ConvergeError, OSError):  # anything else stays a logged 500
        app.add_exception_handler(expected, _error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(MalformedRequest("malformed JSON body"))
        return error_response(invalid_fields(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own misses (no such path or method) in our ErrorBody."""
        miss = MethodNotAllowed if exc.status_code == 405 else RouteNotFound
        return error_response(miss(str(exc.detail)))

    async def registry() -> Any:
        return await runtime.registry()

    async def db(fn: Any, *args: Any) -> Any:
        with outage_of("model registry"):
            return await runtime.db_breaker.call(fn, *args)

    def version_view(mv: Any) -> dict[str, Any]:
        data = mv.model_dump(mode="json", exclude={"validation_sample"})
        data["validation_rows"] = len((mv.validation_sample or {}).get("rows", []))
        return data

    @app.get("/admin/models", dependencies=[guard], summary="List models")
    async def list_models() -> list[dict[str, Any]]:
        rows = await db((await registry()).list_models)
        return orjson.loads(orjson.dumps(rows, default=str))

    @app.get("/admin/models/{name}/versions", dependencies=[guard], summary="List versions")
    async def list_versions(name: ModelName) -> list[dict[str, Any]]:
        versions = await db((await registry()).list_versions, name)
        if not versions:
            raise NotFound(f"no model {name!r}")
        return [version_view(v) for v in versions]

    @app.get("/admin/models/{name}/production", dependencies=[guard], summary="Production version")
    async def production(name: ModelName) -> dict[str, Any]:
        mv = await db((await registry()).production, name)
        if mv is None:
            raise NotFound(f"model {name!r} has no production version")
        return version_view(mv)

    @app.post(
        "/admin/models/{name}/promote",
        dependencies=[guard],
        response_model=ReloadResult,
        summary="Verify, validate and promote a version",
    )
    async def promote(name: ModelName, body: Promote) -> ReloadResult:
        service = await runtime.reload_service()
        return await service.reload(ModelPublished(name=name, version=body.version))

    @app.post(
        "/admin/models/{name}/rollout",
        dependencies=[guard],
        summary="Try a version on a share of traffic (canary) or beside production (shadow)",
    )
    async def start_rollout(name: ModelName, body: StartRollout) -> dict[str, Any]:
        store = await runtime.rollouts()
        rollout = await db(store.start, name, body.version, body.mode, body.percent, body.thresholds)
        return rollout.model_dump(mode="json")

    @app.get("/admin/models/{name}/rollout", dependencies=[guard], summary="The latest rollout")
    async def rollout_status(name: ModelName) -> dict[str, Any]:
        rollout = await db((await runtime.rollouts()).latest, name)
        if rollout is None:
            raise NotFound(f"model {name!r} has had no rollout")
        return rollout.model_dump(mode="json")

    @app.delete("/admin/models/{name}/rollout", dependencies=[guard], summary="Stop the rollout")
    async def stop_rollout(name: ModelName) -> dict[str, Any]:
        store = await runtime.rollouts()
        rollout = await db(store.active, name)
        if rollout is None:
            raise NotFound(f"model {name!r} has no rollout in progress")
        await db(store.end, rollout.id, "stopped", "stopped through the admin API", {})
        return (await db(store.latest, name)).model_dump(mode="json")

    @app.post(
        "/admin/models/{name}/publish",
        dependencies=[guard],
        summary="Register a MOJO trained elsewhere; model.published then validates and promotes it",
    )
    async def publish(name: ModelName, body: Publish) -> dict[str, Any]:
        from converge.mojo_publish import publish_mojo

        published = publish_mojo(
            name=name, mojo=body.mojo, rows=body.validation_rows,
            registry=await registry(), store=runtime.artifacts, settings=runtime.settings,
            description=body.description,
        )  # fmt: skip
        with outage_of("model registry or artifact store"):
            return await published

    @app.post(
        "/admin/models/{name}/rollback",
        dependencies=[guard],
        summary="Make the previous production version production again",
    )
    async def rollback(name: ModelName) -> dict[str, Any]:
        mv = await db((await registry()).rollback, name)
        service = await runtime.reload_service()
        await service._announce(mv.name, mv.version, mv.sha256)
        return version_view(mv)

    @app.post(
        "/admin/reload-model",
        dependencies=[guard],
        response_model=ReloadResult,
        summary="Fetch, verify, validate, promote and announce a registered version",
    )
    async def reload_model(body: ModelPublished) -> ReloadResult:
        service = await runtime.reload_service()
        return await service.reload(body)

    return _TokenFirst(_limits(app, runtime.settings), require_token)  # type: ignore[return-value]


def _limits(app: Any, settings: Any) -> Any:
    """The usual body limit everywhere but the MOJO upload, which gets its own."""
    small = BodyLimit(app, settings.max_body_bytes)
    large = BodyLimit(app, settings.max_publish_bytes)

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        upload = scope["type"] == "http" and scope["path"].endswith("/publish")
        await (large if upload else small)(scope, receive, send)

    return limited
