"""The predict function's gRPC process (``serve_function --target predict-grpc``)."""

from __future__ import annotations

import asyncio
import signal

from converge.serving.observability import configure_logging
from converge.serving.runtime import Runtime
from converge.serving.v2grpc.servicer import serve


async def serve_forever(host: str, port: int) -> None:
    """Serve until SIGTERM (Knative's stop), then drain calls in flight for up to 10 s."""
    configure_logging()
    runtime = Runtime()
    if runtime.settings.grpc_metrics_port:  # the h2c port carries gRPC only; scrape this one
        from prometheus_client import start_http_server

        start_http_server(runtime.settings.grpc_metrics_port, addr=host)
    server = await serve(runtime, host, port)
    await runtime.start("predict")  # the model loads in the background, as for REST
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(10)
    await runtime.close()
