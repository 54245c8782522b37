"""Serve one function target the way the image does: the function's ASGI app under uvicorn.

Two wrappers, one function app (:func:`converge.serving.web.functions.function_app`, which the
functions-framework targets in ``functions/main.py`` forward to unchanged):

- ``none`` (the image's default): uvicorn serves the function app directly;
- ``functions-framework``: functions-framework's ``aio`` ASGI app, exactly as
  ``functions-framework --asgi --target <t>`` builds it, serves it.

Same routes, CloudEvents, probes and answers either way (the integration tests run through
functions-framework). The wrapper adds a Starlette app with four middleware layers and nothing we
use: about 110 µs of CPU per request (423 against 313 µs at peak, 2,328 against 3,184 req/s on one
worker; ``benchmarks/bench_predict.py``, modes ``inline`` and ``inline+ff``), on a path where the
1,000 req/s latency target leaves little CPU to spare.

``predict-grpc`` serves predict's Open Inference Protocol over gRPC instead (HTTP/2 cleartext on
``$PORT``, the port Knative names ``h2c``), with the same runtime code: scoring, cache, metrics.

Either way uvicorn runs with a keep-alive longer than Knative's queue-proxy idle timeout:
functions-framework's own command runs gunicorn with a fixed 2 s keep-alive, so a request could
land on a socket the server is closing (a 502 to the caller).
"""

from __future__ import annotations

import argparse
import gc
import os
import threading

WRAPPERS = ("none", "functions-framework")
TARGETS = ("predict", "reload", "ingest", "predict-grpc")
GC_PAUSE_MAX_S = 30.0


def pause_collector(at_most_s: float) -> None:
    """No cyclic garbage collection while the predict function starts: imports allocate a lot and
    keep nearly all of it, so the collections they trigger find nothing and cost ~10% of the start's
    CPU. The first model going live freezes the start-up heap and turns the collector back on
    (:class:`~converge.serving.replica_sync.ReplicaSync`); a timer does it after ``at_most_s`` if no
    model ever loads."""
    gc.disable()
    timer = threading.Timer(at_most_s, gc.enable)
    timer.daemon = True
    timer.start()


def build_app(target: str, source: str, wrapper: str):
    if wrapper == "functions-framework":
        from functions_framework import aio

        return aio.create_asgi_app(target=target, source=source)
    from converge.serving.web.functions import function_app

    return function_app(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m converge.serving.serve_function")
    parser.add_argument(
        "--target", default=os.environ.get("FUNCTION_TARGET", "predict"), choices=TARGETS
    )
    parser.add_argument("--source", default=os.environ.get("FUNCTION_SOURCE", "functions/main.py"))
    parser.add_argument(
        "--wrapper", default=os.environ.get("FUNCTION_WRAPPER", "none"), choices=WRAPPERS
    )
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container's only interface
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--keep-alive", type=int, default=65, help="seconds; above the proxy's idle timeout")
    args = parser.parse_args(argv)
    if args.target.startswith("predict"):
        pause_collector(GC_PAUSE_MAX_S)
    if args.target == "predict-grpc":
        import asyncio

        from converge.serving.v2grpc.server import serve_forever

        asyncio.run(serve_forever(args.host, args.port))
        return

    import uvicorn

    uvicorn.run(
        build_app(args.target, args.source, args.wrapper),
        host=args.host,
        port=args.port,
        timeout_keep_alive=args.keep_alive,
        log_level=os.environ.get("LOG_LEVEL", "warning").lower(),
        access_log=False,
        # Named, not detected: no WebSocket library imported for routes that do not exist, and no
        # proxy-headers middleware on every request (nothing here reads the client address).
        loop="uvloop",
        http="httptools",
        ws="none",
        interface="asgi3",
        proxy_headers=False,
        server_header=False,  # one header less to check and send per answer, no version advertised
        # as under functions-framework, the runtime starts on the first request (Knative's
        # readiness probe): a replica that cannot reach Postgres yet stays up and unready
        lifespan="off",
    )


if __name__ == "__main__":
    main()
