"""Serving: the predict, reload and ingest functions, the admin API and the local gateway.

Module map: ``holder`` (the live model, swapped atomically), ``scoring`` (off-loop scoring and
micro-batching), ``loader`` (fetch, verify, validate; registry polling and the reload channel),
``online`` (latest features in Redis), ``predict``/``reload``/``ingest`` (the three services),
``events`` (CloudEvents), ``http`` (bodies, errors), ``observability`` (logs, metrics),
``runtime`` (wiring), ``apps`` (one ASGI app per function), ``admin`` (registry API),
``gateway`` (everything in one process).
"""
