"""Request bodies and error responses shared by the functions: never a 500 for bad input.

Every error leaves as an :class:`~converge.contracts.ErrorBody`; pydantic errors keep their
``loc`` so the caller sees which field was wrong. Bodies are read with a size limit before parsing.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from converge.contracts import ErrorBody


class ServingError(Exception):
    """An error with an HTTP status and a message that is safe to show the caller."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.message, detail=self.detail)


class Unauthorized(ServingError):
    """401 with the ``WWW-Authenticate: Bearer`` challenge."""

    def __init__(self, message: str) -> None:
        super().__init__(401, message)
        self.headers = {"WWW-Authenticate": "Bearer"}


def require_bearer(headers: Mapping[str, str], expected: str, credential: str) -> None:
    """Check ``Authorization: Bearer <token>`` against ``expected`` in constant time.

    No credential configured refuses (403), never opens the route; a missing or malformed header
    is 401, a wrong token 403. ``credential`` names the setting in the messages.
    """
    if not expected:
        raise ServingError(403, f"refused: {credential} is not configured")
    header = headers.get("authorization")
    if header is None:
        raise Unauthorized("missing Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ServingError(403, f"invalid token: {credential} does not match")


class JSONResponse(Response):
    """orjson-rendered JSON (pydantic models, dicts, lists)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if hasattr(content, "model_dump"):
            content = content.model_dump(mode="json")
        return orjson.dumps(content)


def error_response(exc: ServingError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.body().model_dump(exclude_none=True), exc.status, headers=headers)


def validation_error(exc: ValidationError, status: int = 422) -> ServingError:
    """Pydantic errors as an ErrorBody: message names the first field, detail lists all of them."""
    detail = [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    first = detail[0] if detail else {"loc": [], "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    return ServingError(status, f"{where}: {first['msg']}{more}", detail)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (413) without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ServingError(413, f"body larger than {limit} bytes")
        except ValueError:
            raise ServingError(400, "invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServingError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Decoded JSON, or a 400 that says so."""
    if not body:
        raise ServingError(400, "empty body: expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServingError(400, f"malformed JSON: {exc}") from None


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, declared or streamed.

    A streamed (chunked) body is read up to the limit before the app runs, because FastAPI turns
    any error raised while it parses a body into a 400.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(ServingError(413, f"body larger than {self.limit} bytes"))
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await too_large(scope, receive, send)
                return
        messages: list[Any] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body"):
                break

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
