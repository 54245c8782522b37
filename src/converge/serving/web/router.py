"""Declared routes and the table that matches them: where a request goes is read in one place.

A route is a method, a path template (``/v2/models/{name}/infer``) and a handler. Fixed paths are
one dict lookup; templates are matched segment by segment, with no regular expressions, because
predict's hot path pays for every microsecond (``benchmarks/bench_routing.py`` measures this table
against Starlette's ``Router`` on the same routes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

#: a route's handler; path parameters are in ``request.path_params``
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.strip("/").split("/")) if self.path != "/" else ()


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


class RouteTable:
    """Match (method, path) to a declared route; a trailing slash is ignored."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._fixed: dict[tuple[str, str], Handler] = {}
        self._templates: list[tuple[str, tuple[str, ...], Handler]] = []
        for route in self.routes:
            if any(_is_param(s) for s in route.segments):
                self._templates.append((route.method, route.segments, route.handler))
            else:
                self._fixed[(route.method, route.path)] = route.handler

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler and path parameters, or None."""
        path = path.rstrip("/") or "/"
        handler = self._fixed.get((method, path))
        if handler is not None:
            return handler, {}
        for route_method, segments, handler in self._templates:
            if route_method == method:
                params = _bind(segments, path)
                if params is not None:
                    return handler, params
        return None

    def knows_path(self, path: str) -> bool:
        """Whether some method is routed at ``path`` (then a miss is 405, not 404)."""
        path = path.rstrip("/") or "/"
        if any(p == path for _, p in self._fixed):
            return True
        return any(_bind(segments, path) is not None for _, segments, _ in self._templates)


def _bind(segments: tuple[str, ...], path: str) -> dict[str, str] | None:
    parts = path.strip("/").split("/")
    if len(parts) != len(segments):
        return None
    params: dict[str, str] = {}
    for part, segment in zip(parts, segments, strict=True):
        if _is_param(segment):
            if not part:
                return None
            params[segment[1:-1]] = part
        elif part != segment:
            return None
    return params
