"""Bounded load and fault scenarios, shared by ``tests/reliability`` and ``bench_reliability.py``.

Everything here talks to real servers on loopback. Every load is open-loop (request ``i`` is due at
``t0 + i / rate``, latency counts from that moment) and bounded twice: by a request count and by
time. The tests assert on what these functions return; the benchmark writes the same numbers.

- :class:`Steady` sends a steady stream and records every request (due time, latency, status,
  the model version predict answered with).
- :class:`EventStream` sends ``features.ingest`` CloudEvents (binary mode), each a small batch of
  vectors with unique entity ids, and remembers which were acknowledged (2xx).
- :func:`fault_run` runs both streams, stops a service, starts it again, waits for a clean
  second, redelivers every unacknowledged event the way Knative Eventing would, and counts what
  the database holds: acknowledged-but-missing, lost and doubled vectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from converge.event_signing import signed_headers

Send = Callable[[int], Awaitable[tuple[int, Any]]]


@dataclass
class Sample:
    due: float  # loop time the request was due
    latency: float  # seconds from due to answer (or to the failure)
    status: int  # HTTP status; 0 for a transport error
    version: int | None = None
    late: float = 0.0  # the generator's own delay: due time to the moment it started the request

    @property
    def done(self) -> float:
        return self.due + self.latency

    @property
    def ok(self) -> bool:
        return self.status == 200


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextlib.contextmanager
def generator_without_gc():
    """No garbage-collector pauses in the load generator while it measures: a full collection of
    its own objects stalls it for tens of milliseconds, and the requests it sends late count
    against the server (latency runs from each request's due time). A run's garbage is small.
    No collection first: in a large process (a long test session) that alone takes seconds."""
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


class Steady:
    """Open-loop load: ``rate`` requests/s, at most ``max_requests`` and ``max_seconds``."""

    def __init__(
        self,
        send: Send,
        rate: float,
        *,
        max_requests: int,
        max_seconds: float,
        max_in_flight: int = 256,
    ) -> None:
        self.send = send
        self.rate = rate
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.samples: list[Sample] = []
        self.stop = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self.t0 = 0.0

    async def run(self) -> list[Sample]:
        loop = asyncio.get_running_loop()
        self.t0 = loop.time()
        tasks: list[asyncio.Task[None]] = []

        async def one(i: int, due: float) -> None:
            late = loop.time() - due
            async with self._slots:
                try:
                    status, version = await self.send(i)
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError):
                    status, version = 0, None
                self.samples.append(Sample(due, loop.time() - due, status, version, late))

        with generator_without_gc():
            for i in range(self.max_requests):
                due = self.t0 + i / self.rate
                if self.stop.is_set() or due - self.t0 > self.max_seconds:
                    break
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # a plain sleep: no task per request
                    if self.stop.is_set():
                        break
                tasks.append(loop.create_task(one(i, due)))
            await asyncio.gather(*tasks)
        self.samples.sort(key=lambda s: s.due)
        return self.samples


async def open_loop(
    port: int, bodies: list[bytes], rate: float, conns: int = 64, path: str = "/predict"
) -> dict:
    """:class:`Steady` over ``conns`` lean connections: ``len(bodies)`` requests at ``rate``/s;
    latency counts from each request's due time, errors are non-200 answers and broken links."""
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await Conn.open(port))
    first_error: dict[str, str] = {}

    async def send(i: int) -> tuple[int, Any]:
        conn = await pool.get()
        try:
            status, body = await conn.post(path, bodies[i])
        except (OSError, asyncio.IncompleteReadError):
            pool.put_nowait(await Conn.open(port))
            raise
        pool.put_nowait(conn)
        if status != 200:
            first_error.setdefault("body", f"{status} {body[:200]!r}")
        return status, None

    steady = Steady(send, rate, max_requests=len(bodies), max_seconds=float("inf"),
                    max_in_flight=max(1, len(bodies)))  # fmt: skip
    samples = await steady.run()
    took = max(s.done for s in samples) - steady.t0 if samples else float("nan")
    while not pool.empty():
        pool.get_nowait().close()
    ok = [s.latency for s in samples if s.ok]
    return {
        "rate": rate, "n": len(bodies), "errors": len(samples) - len(ok), "achieved": len(ok) / took,
        "first_error": first_error.get("body"),
        "p50": pct(ok, 0.50) * 1e3, "p99": pct(ok, 0.99) * 1e3,
        "late_p99": pct([s.late for s in samples], 0.99) * 1e3,
    }  # fmt: skip


async def closed_loop(
    port: int, bodies: list[bytes], concurrency: int, duration: float, path: str = "/predict"
) -> dict:
    """``concurrency`` clients back to back for ``duration`` s (bounded by ``len(bodies)``)."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    index = 0
    deadline = loop.time() + duration

    async def client() -> None:
        nonlocal index, errors
        conn = await Conn.open(port)
        while loop.time() < deadline and index < len(bodies):
            body = bodies[index]
            index += 1
            start = loop.time()
            status, _ = await conn.post(path, body)
            latencies.append(loop.time() - start)
            errors += status != 200
        conn.close()

    t0 = loop.time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    took = loop.time() - t0
    return {
        "concurrency": concurrency, "n": len(latencies), "errors": errors,
        "throughput": len(latencies) / took,
        "p50": pct(latencies, 0.50) * 1e3, "p99": pct(latencies, 0.99) * 1e3,
    }  # fmt: skip


# -- senders -------------------------------------------------------------------------------------
def predict_bodies(
    rows: list[dict[str, Any]], numeric: str, n: int, model: str | None = None
) -> list[bytes]:
    """``n`` single-row requests with unique features (so every one is a cache miss)."""
    base = int(time.time() * 1000) % 1_000_000
    out = []
    for i in range(n):
        row = dict(rows[i % len(rows)])
        row[numeric] = float(base + i) / 1000.0
        body: dict[str, Any] = {"features": row}
        if model:
            body["model"] = model
        out.append(orjson.dumps(body))
    return out


# Shorter than the server's keep-alive timeout (gunicorn's default 2 s), see RawPredict.
CLIENT_LIMITS = httpx.Limits(max_connections=100, keepalive_expiry=1.0)


def httpx_predict(client: httpx.AsyncClient, bodies: list[bytes], path: str = "/predict") -> Send:
    async def send(i: int) -> tuple[int, Any]:
        r = await client.post(
            path, content=bodies[i % len(bodies)], headers={"content-type": "application/json"}
        )
        version = r.json().get("version") if r.status_code == 200 else None
        return r.status_code, version

    return send


class Conn:
    """A lean HTTP/1.1 keep-alive connection: the generator must cost far less than the server."""

    # gunicorn closes keep-alive connections idle for 2 s; reconnect before that, as clients do.
    MAX_IDLE_S = 1.5

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port, self.host = port, host
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> Conn:
        conn = cls(port, host)
        await conn._connect()
        return conn

    async def _connect(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.used = time.monotonic()

    async def post(self, path: str, body: bytes, headers: bytes = b"") -> tuple[int, bytes]:
        """``headers``: extra header lines, each ending in CRLF."""
        if time.monotonic() - self.used > self.MAX_IDLE_S or self.reader.at_eof():
            await self._connect()
        self.used = time.monotonic()
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n%s"
            b"Content-Length: %d\r\n\r\n%s" % (path.encode(), headers, len(body), body)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        data = await self.reader.readexactly(length)
        self.used = time.monotonic()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class RawPredict:
    """A pool of lean connections for 1,000 req/s and more; a broken one is replaced.

    A connection idle for longer than ``max_idle_s`` is closed instead of reused: the server drops
    idle keep-alive connections after its own timeout (gunicorn's ``keepalive``, 2 s), and a
    request written just as it does so fails in transit, which says nothing about the server.
    ``stale_errors`` counts transport errors on connections idle for over a second all the same.
    """

    def __init__(
        self,
        port: int,
        bodies: list[bytes],
        path: str = "/predict",
        max_idle_s: float = 1.0,
        timeout_s: float = 10.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.timeout_s = timeout_s
        self.port, self.bodies, self.path, self.host = port, bodies, path, host
        self.max_idle_s = max_idle_s
        self._idle: list[tuple[Conn, float]] = []
        self.stale_errors = 0

    async def __call__(self, i: int) -> tuple[int, Any]:
        now = time.monotonic()
        conn, last = None, now
        while self._idle:
            conn, last = self._idle.pop()
            if now - last <= self.max_idle_s:
                break
            conn.close()
            conn = None
        if conn is None:
            conn, last = await Conn.open(self.port, self.host), now
        try:
            status, body = await asyncio.wait_for(
                conn.post(self.path, self.bodies[i % len(self.bodies)]), self.timeout_s
            )
        except BaseException:
            conn.close()
            self.stale_errors += now - last > 1.0
            raise
        self._idle.append((conn, time.monotonic()))
        if status != 200:
            return status, None
        # The version is the only field we need; skip decoding the predictions.
        marker = body.find(b'"version":')
        end = body.find(b",", marker)
        return status, int(body[marker + 10 : end]) if marker >= 0 else None

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


# -- ingest events -------------------------------------------------------------------------------
@dataclass
class Delivery:
    event_id: str
    entity_ids: list[str]
    headers: dict[str, str] | None = None
    status: int = -1
    written: int | None = None
    attempts: int = 0


class EventStream:
    """``features.ingest`` CloudEvents of ``per_event`` vectors each, every entity id unique."""

    def __init__(
        self, client: httpx.AsyncClient, key: str, per_event: int = 5, prefix: str | None = None
    ):
        self.client = client
        self.key = key  # the ingest token: events are signed with it
        self.per_event = per_event
        self.prefix = prefix or f"rel-{uuid.uuid4().hex[:10]}"
        self.events: dict[int, Delivery] = {}
        self.written_total = 0

    def _payload(self, i: int) -> tuple[Delivery, dict[str, Any]]:
        d = self.events.get(i)
        if d is None:
            ids = [f"{self.prefix}-{i}-{j}" for j in range(self.per_event)]
            d = self.events[i] = Delivery(f"{self.prefix}-ev-{i}", ids)
        vectors = [
            {
                "entity_id": e,
                "event_time": "2025-01-01T00:00:00Z",
                "features": {"i": i, "j": j, "note": "steady"},
            }
            for j, e in enumerate(d.entity_ids)
        ]
        return d, {"vectors": vectors}

    async def send(self, i: int) -> tuple[int, Any]:
        d, data = self._payload(i)
        d.attempts += 1
        if d.headers is None:  # a redelivery carries the same id, time and signature
            d.headers = signed_headers(
                self.key, "features.ingest", "reliability/stream", data, d.event_id
            )
        try:
            r = await self.client.post("/events", content=orjson.dumps(data), headers=d.headers)
        except httpx.HTTPError:
            d.status = 0
            raise
        d.status = r.status_code
        if r.status_code == 200:
            written = int(r.json()["written"])
            d.written = written if d.written is None else d.written + written
            self.written_total += written
        return r.status_code, None

    def unacknowledged(self) -> list[int]:
        return [i for i, d in self.events.items() if d.status != 200]

    def acknowledged_ids(self) -> list[str]:
        return [e for d in self.events.values() if d.status == 200 for e in d.entity_ids]

    def all_ids(self) -> list[str]:
        return [e for d in self.events.values() for e in d.entity_ids]

    async def redeliver(self, timeout: float = 60.0, backoff: float = 0.2) -> int:
        """Resend every unacknowledged event until it is acknowledged; returns the resends."""
        deadline = time.monotonic() + timeout
        resent = 0
        while pending := self.unacknowledged():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} events still unacknowledged")
            for i in pending:
                resent += 1
                try:
                    await self.send(i)
                except httpx.HTTPError:
                    pass
            if self.unacknowledged():
                await asyncio.sleep(backoff)
        return resent


async def stored_ids(dsn: str, prefix: str) -> list[str]:
    """Entity ids of ``prefix`` in the feature store, one per row (read straight from Postgres)."""
    import asyncpg

    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        rows = await conn.fetch(
            "SELECT entity_id FROM features WHERE entity_id LIKE $1", prefix + "-%"
        )
    finally:
        await conn.close()
    return [r["entity_id"] for r in rows]


# -- one fault ----------------------------------------------------------------------------------
@dataclass
class FaultResult:
    fault: str
    target: str = ""  # what failed (bench_reliability's table)
    kind: str = ""  # how (see _faults.py)
    predict_sent: int = 0
    predict_failed: int = 0
    predict_p99_ms: float = 0.0
    predict_max_ms: float = 0.0
    ingest_sent: int = 0
    ingest_failed: int = 0  # not acknowledged on first delivery
    down_s: float = 0.0  # stop() called -> start() returned
    recovery_s: float = 0.0  # start() returned -> last failed request answered (0: none after)
    failed_after_recovery: int = 0  # failed requests sent after start() returned
    predict_p99_down_ms: float = 0.0  # p99 of the predictions sent while the fault lasted
    ingest_fail_max_ms: float = 0.0  # the slowest refusal: how long ingest took to say 503
    acked_missing: int = 0  # vectors of acknowledged events not in the store (must be 0)
    redelivered: int = 0
    lost: int = 0  # vectors never stored after redelivery
    doubled: int = 0  # rows beyond one per vector, or writes counted twice
    vectors: int = 0
    settled: bool = False  # both streams ran clean for `clean_s` after the restart
    failure_statuses: dict[int, int] = field(default_factory=dict)
    # the first 40 failed or slow (> 250 ms) requests: (s after stop(), latency ms, status, stream)
    incidents: list[tuple[float, float, int, str]] = field(default_factory=list)
    generator_lag_ms: float = 0.0  # worst stall of the load generator's own loop
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _failures(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if not s.ok]


async def _watch_lag(result: FaultResult, tick: float = 0.01) -> None:
    """Record how late the generator's own loop wakes up: a busy generator inflates latency."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(tick)
        late = (loop.time() - before - tick) * 1e3
        result.generator_lag_ms = max(result.generator_lag_ms, late)


async def fault_run(
    fault: str,
    stop: Callable[[], Any],
    start: Callable[[], Any],
    *,
    predict: Send,
    ingest: EventStream,
    direct_dsn: str,
    predict_rate: float = 60.0,
    ingest_rate: float = 10.0,
    warm_s: float = 1.5,
    down_s: float = 2.0,
    clean_s: float = 1.5,
    max_s: float = 60.0,
    during_outage: Callable[[], Awaitable[Any]] | None = None,
) -> FaultResult:
    """Steady predict and ingest load; stop, wait, start; run until ``clean_s`` without a failure.

    ``stop``/``start`` are blocking (they run in a thread so the load keeps going). The run is
    bounded by ``max_s``. ``during_outage`` (optional) runs while the service is down.
    """
    loop = asyncio.get_running_loop()
    p = Steady(predict, predict_rate, max_requests=int(predict_rate * max_s), max_seconds=max_s)
    g = Steady(ingest.send, ingest_rate, max_requests=int(ingest_rate * max_s), max_seconds=max_s)
    result = FaultResult(fault)
    lag = loop.create_task(_watch_lag(result))
    tasks = [loop.create_task(p.run()), loop.create_task(g.run())]
    try:
        await asyncio.sleep(warm_s)
        t_stop = loop.time()
        await asyncio.to_thread(stop)
        if during_outage is not None:
            result.notes.append(str(await during_outage()))
        await asyncio.sleep(max(0.0, down_s - (loop.time() - t_stop)))
        await asyncio.to_thread(start)
        t_up = loop.time()
        result.down_s = t_up - t_stop
        # Run on until both streams have been clean for `clean_s` (or the bound is reached).
        deadline = t_up + max_s / 2
        while loop.time() < deadline:
            await asyncio.sleep(0.2)
            now = loop.time()
            recent = [s for s in p.samples + g.samples if s.done > now - clean_s]
            settled = now - t_up > clean_s and recent and all(s.ok for s in recent)
            if settled:
                result.settled = True
                break
    finally:
        p.stop.set()
        g.stop.set()
        await asyncio.gather(*tasks)
        lag.cancel()

    failed = _failures(p.samples) + _failures(g.samples)
    late = [s.done - t_up for s in failed if s.done > t_up]
    result.recovery_s = max(late, default=0.0)
    result.failed_after_recovery = sum(1 for s in failed if s.due >= t_up)
    for s in failed:
        result.failure_statuses[s.status] = result.failure_statuses.get(s.status, 0) + 1
    for stream, samples in (("predict", p.samples), ("ingest", g.samples)):
        for s in samples:
            if (not s.ok or s.latency > 0.25) and len(result.incidents) < 40:
                result.incidents.append(
                    (round(s.due - t_stop, 3), round(s.latency * 1e3, 1), s.status, stream)
                )
    lat = [s.latency * 1e3 for s in p.samples]
    result.predict_p99_down_ms = pct([s.latency * 1e3 for s in p.samples if t_stop <= s.due < t_up], 0.99)
    result.ingest_fail_max_ms = max((s.latency * 1e3 for s in _failures(g.samples)), default=0.0)
    result.predict_sent, result.predict_failed = len(p.samples), len(_failures(p.samples))
    result.predict_p99_ms, result.predict_max_ms = pct(lat, 0.99), max(lat, default=0.0)
    result.ingest_sent, result.ingest_failed = len(g.samples), len(_failures(g.samples))

    # Acknowledged means stored: check before anything is redelivered.
    stored = await stored_ids(direct_dsn, ingest.prefix)
    present = set(stored)
    result.acked_missing = sum(1 for e in ingest.acknowledged_ids() if e not in present)
    # Knative redelivers what was not acknowledged; then every vector must be there exactly once.
    try:
        result.redelivered = await ingest.redeliver()
    except TimeoutError as exc:  # what is still missing counts as lost below
        result.notes.append(f"redelivery gave up: {exc}")
    stored = await stored_ids(direct_dsn, ingest.prefix)
    expected = set(ingest.all_ids())
    result.vectors = len(expected)
    result.lost = len(expected - set(stored))
    result.doubled = (len(stored) - len(set(stored))) + len(set(stored) - expected)
    result.doubled += max(0, ingest.written_total - len(expected))
    return result


# -- reloads under load ---------------------------------------------------------------------------
@dataclass
class ReloadStep:
    version: int
    status: int = 0  # what the reload answered
    posted: float = 0.0  # loop time the reload was sent
    answered: float = 0.0
    seen: float | None = None  # first due time of a prediction answered with this version


@dataclass
class ReloadResult:
    sent: int = 0
    non_200: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    versions: list[int] = field(default_factory=list)  # distinct versions served, in order seen
    regressions: int = 0  # answers older than one already received before the request was sent
    steady_p50_ms: float = 0.0
    steady_p99_ms: float = 0.0
    reload_p50_ms: float = 0.0
    reload_p99_ms: float = 0.0
    steady_n: int = 0
    reload_n: int = 0
    achieved_rps: float = 0.0
    generator_lag_ms: float = 0.0
    steps: list[ReloadStep] = field(default_factory=list)

    @property
    def p99_ratio(self) -> float:
        return self.reload_p99_ms / self.steady_p99_ms if self.steady_p99_ms else float("nan")


def regressions(samples: list[Sample]) -> int:
    """Requests answered with an older version than some answer that arrived before they were
    sent: the only ordering a client can observe, whatever the concurrency."""
    by_done = sorted((s for s in samples if s.version is not None), key=lambda s: s.done)
    count, newest, j = 0, 0, 0
    for s in sorted((s for s in samples if s.version is not None), key=lambda s: s.due):
        while j < len(by_done) and by_done[j].done < s.due:
            newest = max(newest, by_done[j].version or 0)
            j += 1
        count += (s.version or 0) < newest
    return count


async def reload_run(
    predict: Send,
    reload: Callable[[int], Awaitable[int]],
    plan: list[int],
    *,
    rate: float,
    duration_s: float,
    steady_s: float,
    gap_s: float,
    ramp_s: float = 0.5,
) -> ReloadResult:
    """Open-loop predictions at ``rate`` for ``duration_s``; from ``steady_s`` on, reload each
    version of ``plan`` in turn (``reload(version)`` returns the HTTP status), ``gap_s`` apart,
    waiting for a good one to show up in the answers.

    Steady state is ``[ramp_s, steady_s)`` (the ramp is the generator opening its connections),
    "during reloads" is ``[steady_s, duration_s)``. An empty plan is the control run: the same
    windows without any reload, to tell the reloads' cost from the machine's own noise.
    """
    loop = asyncio.get_running_loop()
    load = Steady(predict, rate, max_requests=int(rate * duration_s), max_seconds=duration_s)
    out = ReloadResult()
    lag = FaultResult("reload")
    watch = loop.create_task(_watch_lag(lag))
    task = loop.create_task(load.run())
    try:
        await asyncio.sleep(steady_s)
        for version in plan:
            step = ReloadStep(version, posted=loop.time())
            out.steps.append(step)
            step.status = await reload(version)
            step.answered = loop.time()
            if step.status == 200:
                deadline = loop.time() + 30
                while loop.time() < deadline:
                    hits = [s.done for s in load.samples if s.version == version]
                    if hits:
                        step.seen = min(hits)
                        break
                    await asyncio.sleep(0.02)
            await asyncio.sleep(max(0.0, step.posted + gap_s - loop.time()))
    finally:
        samples = await task  # runs until duration_s
        watch.cancel()
    out.generator_lag_ms = lag.generator_lag_ms
    out.sent = len(samples)
    for s in samples:
        if not s.ok:
            out.non_200 += 1
            out.statuses[s.status] = out.statuses.get(s.status, 0) + 1
    for s in samples:
        if s.version is not None and s.version not in out.versions:
            out.versions.append(s.version)
    out.regressions = regressions(samples)
    t0 = load.t0
    steady = [s.latency * 1e3 for s in samples if t0 + ramp_s <= s.due < t0 + steady_s]
    during = [s.latency * 1e3 for s in samples if s.due >= t0 + steady_s]
    out.steady_n, out.reload_n = len(steady), len(during)
    out.steady_p50_ms, out.steady_p99_ms = pct(steady, 0.5), pct(steady, 0.99)
    out.reload_p50_ms, out.reload_p99_ms = pct(during, 0.5), pct(during, 0.99)
    took = max((s.done for s in samples), default=t0) - t0
    out.achieved_rps = len(samples) / took if took > 0 else 0.0
    return out
