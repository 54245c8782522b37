"""Request bodies and error responses: read with a size limit, parsed, answered as ErrorBody.

Every error leaves as an :class:`~converge.contracts.ErrorBody` with the status
:mod:`converge.serving.status` gives its class; pydantic errors keep their ``loc`` so the caller
sees which field was wrong. Bodies are read with a size limit before parsing.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from converge.contracts import ErrorBody
from converge.errors import MalformedRequest, TooLarge, UnsupportedMediaType
from converge.serving.status import status_of


class JSONResponse(Response):
    """orjson-rendered JSON (pydantic models, dicts, lists)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if hasattr(content, "model_dump"):
            content = content.model_dump(mode="json")
        return orjson.dumps(content)


def error_response(exc: BaseException) -> JSONResponse:
    """``exc`` answered with its status, message and field detail (never a trace)."""
    status = status_of(exc)
    body = ErrorBody(error=status.message, detail=status.detail)
    return JSONResponse(body.model_dump(exclude_none=True), status.http, headers=status.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (413) without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise MalformedRequest("invalid Content-Length") from None
        if size > limit:
            raise TooLarge(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Decoded JSON, or a 400 that says so."""
    if not body:
        raise MalformedRequest("empty body: expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"malformed JSON: {exc}") from None


async def json_body(request: Request, limit: int) -> Any:
    """The decoded JSON body of a route that reads only JSON."""
    content_type = request.headers.get("content-type", "application/json").lower()
    if "json" not in content_type:
        raise UnsupportedMediaType(f"Content-Type {content_type!r}: send application/json")
    return parse_json(await read_body(request, limit))


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, declared or streamed.

    A streamed (chunked) body is read up to the limit before the app runs, because FastAPI turns
    any error raised while it parses a body into a 400.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(TooLarge(f"body larger than {self.limit} bytes"))
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await too_large(scope, receive, send)
                return
        messages: list[Message] = []
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

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
