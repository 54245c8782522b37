"""Knative entry points (functions-framework ``aio``): targets ``predict``, ``reload``, ``ingest``.

Run one with ``functions-framework --asgi --source functions/main.py --target predict``. Each
target serves its HTTP routes, CloudEvents (binary and structured), ``GET /healthz`` (liveness),
``GET /readyz`` (readiness; predict is ready once its model is loaded) and ``GET /metrics``; the
logic lives in :mod:`converge.serving`.
"""

from functions_framework import aio

from converge.serving.web.functions import forward


@aio.http
async def predict(request):
    return forward("predict", request)


@aio.http
async def reload(request):
    return forward("reload", request)


@aio.http
async def ingest(request):
    return forward("ingest", request)
