"""The Open Inference Protocol's REST routes (KServe "V2"), declared beside predict's own.

Handlers only read the request and write the response: decoding, scoring and encoding are the
data plane's (:mod:`converge.serving.open_inference`), which the gRPC service shares. The data
plane and its pydantic models are imported by the first V2 request, not by predict's start.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from converge import __version__
from converge.serving.runtime import Runtime
from converge.serving.web.body import JSONResponse, read_body
from converge.serving.web.router import Route

MODEL = "/v2/models/{name}"
VERSION = "/v2/models/{name}/versions/{version}"


def routes(runtime: Runtime) -> list[Route]:
    async def server_live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def server_ready(request: Request) -> Response:
        ready = runtime.holder.get(runtime.settings.default_model) is not None
        return JSONResponse({"ready": ready}, 200 if ready else 400)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(
            {"name": "converge", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(request: Request) -> Response:
        from converge.serving.open_inference import metadata, resolve

        params = request.path_params
        return JSONResponse(metadata(await resolve(runtime, params["name"], params.get("version"))))

    async def model_ready(request: Request) -> Response:
        from converge.serving.open_inference import resolve

        params = request.path_params
        loaded = await resolve(runtime, params["name"], params.get("version"))
        return JSONResponse({"name": loaded.name, "ready": True})

    async def infer(request: Request) -> Response:
        from converge.serving.open_inference import infer
        from converge.serving.v2_binary import HEADER, binary_outputs, build_response, split_request
        from converge.serving.v2_codec import parse_request

        body = split_request(
            await read_body(request, runtime.settings.max_body_bytes), request.headers.get(HEADER)
        )
        params = request.path_params
        answer = await infer(runtime, params["name"], params.get("version"), parse_request(body))
        content, json_size = build_response(
            answer, binary_outputs(body, [o["name"] for o in answer["outputs"]])
        )
        if json_size is None:
            return Response(content, media_type="application/json")
        return Response(
            content,
            media_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(json_size)},
        )

    return [
        Route("GET", "/v2", server_metadata),
        Route("GET", "/v2/health/live", server_live),
        Route("GET", "/v2/health/ready", server_ready),
        *(
            route
            for base in (MODEL, VERSION)
            for route in (
                Route("GET", base, model_metadata),
                Route("GET", f"{base}/ready", model_ready),
                Route("POST", f"{base}/infer", infer),
            )
        ),
    ]
