"""Serve one function target the way the image does: functions-framework's ASGI app under uvicorn.

functions-framework's own command runs gunicorn with a fixed 2 s keep-alive. Knative's queue-proxy
keeps idle upstream connections longer, so a request can land on a socket the server is closing
(a 502 to the caller). uvicorn with a longer keep-alive closes that race; the function code and
the functions-framework request handling stay exactly the same.
"""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m converge.serving.serve_function")
    parser.add_argument("--target", default=os.environ.get("FUNCTION_TARGET", "predict"))
    parser.add_argument("--source", default=os.environ.get("FUNCTION_SOURCE", "functions/main.py"))
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container's only interface
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--keep-alive", type=int, default=65, help="seconds; above the proxy's idle timeout")
    args = parser.parse_args(argv)

    import uvicorn
    from functions_framework import aio

    app = aio.create_asgi_app(target=args.target, source=args.source)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        timeout_keep_alive=args.keep_alive,
        log_level=os.environ.get("LOG_LEVEL", "warning").lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
