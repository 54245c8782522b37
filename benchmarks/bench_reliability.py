"""Reliability numbers: faults under load, and reloads under 1,000 req/s.

Starts its own local stack (Postgres with fsync on, PgBouncer, Redis, SeaweedFS S3) in a temporary directory
and the functions exactly as the image runs them (``converge.serving.serve_function``, one worker),
all on loopback. Everything is bounded in request count and time.

1. Faults: predict (explicit features, cache misses) at ``--predict-rate`` and ingest
   (``features.ingest`` CloudEvents of 10 vectors) at ``--ingest-rate`` while each of Redis,
   PgBouncer, Postgres (fsync on), S3 and the function processes fails in each way of
   ``_faults.py``: a graceful stop, SIGKILL, SIGSTOP (``--freeze`` seconds, longer than every
   timeout on the request paths) and a slow, lossy link (``_link.py``), for ``--down`` seconds.
   Per row: failed requests, predict p99 during the fault, how long ingest took to refuse, failures
   after the recovery, and whether any event was lost or doubled (acknowledged vs stored; then
   every unacknowledged event is redelivered, as Knative Eventing does, and every vector must be
   stored exactly once). Needs root (network namespaces and TUN devices for the link).
2. Reload under load: ``--rate`` req/s open-loop for ``--duration`` s; after a third of it, five
   consecutive reloads, one of them a corrupt artifact. Non-200 count, versions seen, and p99
   during the reloads against steady state.

Usage:  python benchmarks/bench_reliability.py [--rate 1000] [--duration 15] [--no-faults]
                  [--down 5] [--freeze 20] [--targets ...] [--kinds ...] [--no-reload] [--no-write]

Writes the generated part of RELIABILITY.md and the "## Reload under load" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path


import httpx
import psutil
from _load import (
    CLIENT_LIMITS,
    EventStream,
    FaultResult,
    RawPredict,
    ReloadResult,
    fault_run,
    predict_bodies,
    reload_run,
)
from pydantic import SecretStr

from converge.checkout import CORPUS, REPO
from converge.db import create_pool
from converge.serving.testing import (
    FunctionProcess,
    migrate,
    read_rows,
    register_model,
)
from converge.settings import Settings
from converge.stack.pgbouncer import PgBouncer
from converge.stack.postgres import Postgres
from converge.stack.procs import free_port
from converge.stack.redis import Redis
from converge.stack.s3 import S3
from _faults import KINDS, NETEM_DELAY_MS, NETEM_LOSS, scenario
from _link import BehindLink, Link, url_via
from _report import machine, write_section  # noqa: E402

SECTION = "## Reload under load"
BEGIN = "<!-- bench_reliability: generated, do not edit by hand -->"
END = "<!-- /bench_reliability -->"
TOKEN = "bench-admin-token"
INGEST_TOKEN = "bench-ingest-token"
SOURCE = REPO / "functions" / "main.py"
TARGETS = ("redis", "pgbouncer", "postgres", "s3", "functions")


def group_rss(fn: FunctionProcess) -> int:
    root = psutil.Process(fn.proc.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


class Stack:
    """The four services on free loopback ports; stopped whatever happens."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.started: list = []

    def start(self) -> Settings:
        self.pg = self._up(Postgres(self.work, free_port()))  # fsync on: a crash loses no commit
        self.pgb = self._up(PgBouncer(self.work, self.pg, free_port(), query_wait_timeout=3))
        self.redis = self._up(Redis(self.work, free_port()))
        self.s3 = self._up(S3(self.work, free_port()))
        return Settings(
            state_dir=self.work,
            stack_backend="local",
            database_url=SecretStr(self.pgb.dsn),
            database_direct_url=SecretStr(self.pg.dsn),
            redis_url=self.redis.url,
            s3_endpoint_url=self.s3.url,
            s3_access_key=SecretStr(self.s3.access_key),
            s3_secret_key=SecretStr(self.s3.secret_key),
            s3_bucket=self.s3.bucket,
            s3_region=self.s3.region,
            default_model=f"bench-rel-{uuid.uuid4().hex[:6]}",
            registry_poll_s=2.0,
            admin_token=SecretStr(TOKEN),
            ingest_token=SecretStr(INGEST_TOKEN),
        )

    def _up(self, service):
        service.start()
        self.started.append(service)
        return service

    def stop(self) -> None:
        for service in reversed(self.started):
            service.stop()


def corpus() -> dict[str, tuple[bytes, list[dict]]]:
    root = CORPUS
    return {
        name: ((root / f"{name}.zip").read_bytes(), read_rows(root / f"{name}.input.csv", 8))
        for name in ("binomial", "regression")
    }


async def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} never became ready")
            await asyncio.sleep(0.1)


# -- 1. faults ----------------------------------------------------------------------------------
async def run_faults(
    stack: Stack, settings: Settings, models, work: Path, args
) -> list[FaultResult]:
    """Every target and fault kind in turn; slow-link runs go to functions that reach every
    dependency over its link (and to the functions over theirs)."""
    started: list = []

    def up(thing):
        started.append(thing)
        return thing.start()

    def function(role: str, cfg: Settings, name: str) -> FunctionProcess:
        return up(FunctionProcess(role, SOURCE, cfg, free_port(), work / f"{name}.log"))

    try:
        links = {"postgres": up(Link(stack.pg.port))}
        far = up(PgBouncer(work / "linked", BehindLink(stack.pg, links["postgres"]), free_port(),
                           query_wait_timeout=3))  # fmt: skip
        links |= {
            "pgbouncer": up(Link(far.port)),
            "redis": up(Link(stack.redis.port)),
            "s3": up(Link(stack.s3.port)),
        }
        linked = settings.model_copy(update={
            "database_url": SecretStr(url_via(far.dsn, far.port, links["pgbouncer"])),
            "redis_url": url_via(settings.redis_url, stack.redis.port, links["redis"]),
            "s3_endpoint_url": url_via(settings.s3_endpoint_url, stack.s3.port, links["s3"]),
        })  # fmt: skip
        fns = {role: function(role, settings, role) for role in ("predict", "ingest")}
        far_fns = {role: function(role, linked, f"linked-{role}") for role in ("predict", "ingest")}
        for fn in (fns["predict"], far_fns["predict"]):
            await wait_ready(fn.url)
        links["functions"] = [up(Link(fn.port, port=free_port())) for fn in fns.values()]
        bodies = predict_bodies(models["binomial"][1], "PSA", int(args.predict_rate * 120))

        def start_predict() -> None:
            fns["predict"].start()
            asyncio.run(wait_ready(fns["predict"].url))

        services = {"redis": stack.redis, "pgbouncer": stack.pgb, "postgres": stack.pg, "s3": stack.s3}
        results = []
        pairs = [("none", "none")] + [
            (target, kind) for target in args.targets.split(",") for kind in args.kinds.split(",")
        ]
        for target, kind in pairs:
            if kind == "netem" and target == "functions":
                p_link, i_link = links["functions"]
                p_addr, i_url = (p_link.host, p_link.port), f"http://{i_link.host}:{i_link.port}"
            else:
                chosen = far_fns if kind == "netem" else fns
                p_addr, i_url = ("127.0.0.1", chosen["predict"].port), chosen["ingest"].url
            fail, recover = scenario(
                target, kind, services=services, functions=fns, links=links,
                start_predict=start_predict,
            )
            async with httpx.AsyncClient(base_url=i_url, timeout=10.0, limits=CLIENT_LIMITS) as ic:
                sender = RawPredict(p_addr[1], bodies, host=p_addr[0])
                try:
                    result = await fault_run(
                        f"{target} {kind}", fail, recover,
                        predict=sender, ingest=EventStream(ic, INGEST_TOKEN, per_event=10),
                        direct_dsn=stack.pg.dsn, predict_rate=args.predict_rate,
                        ingest_rate=args.ingest_rate, warm_s=2.0,
                        down_s=args.freeze if kind == "freeze" else args.down,
                        clean_s=2.0, max_s=120.0,
                    )
                finally:
                    sender.close()
            result.target, result.kind = target, kind
            row = result.row()
            row.pop("incidents")
            print(json.dumps(row), flush=True)
            results.append(result)
            await asyncio.sleep(1.0)
    finally:
        for thing in reversed(started):
            thing.stop()
    return results


# -- 2. reload under load -----------------------------------------------------------------------
async def run_reloads(
    settings: Settings, models, work: Path, args, control: bool = False
) -> tuple[ReloadResult, dict]:
    name = settings.default_model
    # Replicas learn of a promotion through the Redis channel; the poll is only the safety net.
    slow_poll = settings.model_copy(update={"registry_poll_s": 30.0})
    predict = FunctionProcess(
        "predict", SOURCE, slow_poll, free_port(), work / "predict-reload.log"
    ).start()
    reload_fn = FunctionProcess(
        "reload", SOURCE, settings, free_port(), work / "reload.log"
    ).start()
    if args.reload_nice:
        # On a cluster the reload function is its own Knative Service with its own CPU; on one
        # small machine it otherwise takes the predict replica's CPU while it parses and validates.
        os.setpriority(os.PRIO_PGRP, reload_fn.proc.pid, args.reload_nice)
    kinds = ["regression", "binomial", "corrupt", "regression", "binomial"]
    pool = await create_pool(settings, min_size=0)
    plan = []
    try:
        for kind in [] if control else kinds:
            if kind == "corrupt":
                mojo, rows = models["regression"]
                mv = await register_model(settings, pool, name, mojo[: len(mojo) // 2], rows,
                                          predictions=[{"predict": 0.0}] * len(rows))  # fmt: skip
            else:
                mojo, rows = models[kind]
                mv = await register_model(settings, pool, name, mojo, rows)
            plan.append(mv.version)
    finally:
        await pool.close()
    await wait_ready(predict.url)
    features = {**models["regression"][1][0], **models["binomial"][1][0]}
    bodies = predict_bodies([features], "PSA", int(args.rate * args.duration) + 10)
    sender = RawPredict(predict.port, bodies, max_idle_s=args.client_idle)
    rss = {}
    try:
        # Warm-up: connections, first scores (not measured).
        warm = RawPredict(predict.port, bodies[:500])
        for i in range(500):
            await warm(i)
        warm.close()
        rss["before"] = group_rss(predict)
        async with httpx.AsyncClient(
            base_url=reload_fn.url, timeout=60.0, headers={"authorization": f"Bearer {TOKEN}"}
        ) as admin:

            async def reload(version: int) -> int:
                r = await admin.post("/admin/reload-model", json={"name": name, "version": version})
                return r.status_code

            # 2 s ramp (not counted), 4 s steady state, then the reloads over the rest.
            result = await reload_run(
                sender, reload, plan if not control else [], rate=args.rate,
                duration_s=args.duration, steady_s=6.0, ramp_s=2.0,
                gap_s=(args.duration - 6.0 - 1.5) / len(kinds),
            )  # fmt: skip
        rss["after"] = group_rss(predict)
        print(json.dumps({k: v for k, v in result.__dict__.items() if k != "steps"}), flush=True)
    finally:
        sender.close()
        predict.stop()
        reload_fn.stop()
    pairs = [] if control else list(zip(plan, kinds, strict=True))
    result_plan = {"plan": pairs, "stale": sender.stale_errors, "control": control}
    return result, {**rss, **result_plan}


# -- rendering ----------------------------------------------------------------------------------
def render_faults(results: list[FaultResult], args, took: float) -> str:
    lines = [
        BEGIN,
        "",
        f"`{command(args)}` ({datetime.now(UTC):%Y-%m-%d}, {took:.0f} s wall).",
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end (shared with other jobs).",
        (
            f"Load: predict {args.predict_rate:g} req/s (explicit features, every request a cache miss), ingest"
            f" {args.ingest_rate:g} CloudEvents/s of 10 vectors. Each fault lasts about {args.down:g} s"
            f" ({args.freeze:g} s for freeze); netem: {NETEM_DELAY_MS:g} ms delay and {NETEM_LOSS:.0%} loss in each direction."
        ),
        "",
        "The first row is the control: the same load and windows with nothing failing, the machine's own noise.",
        "",
        "| dependency | fault | predict sent | predict failed | predict p99 ms (during the fault) | predict p99 ms (whole run) | events sent | events not acked | slowest refusal ms | failed after recovery | healthy again after recovery s | acked but not stored | lost | doubled | generator stall ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.kind} | {r.predict_sent} | {r.predict_failed} | {r.predict_p99_down_ms:,.1f} | {r.predict_p99_ms:,.1f} "
            f"| {r.ingest_sent} | {r.ingest_failed} | {r.ingest_fail_max_ms:,.0f} | {r.failed_after_recovery} "
            f"| {r.recovery_s:.2f}{'' if r.settled else ' (not settled)'} "
            f"| {r.acked_missing} | {r.lost} | {r.doubled} | {r.generator_lag_ms:,.0f} |"
        )

    def statuses(r: FaultResult) -> str:
        parts = [f"{k or 'connection error'} x{v}" for k, v in sorted(r.failure_statuses.items())]
        return ", ".join(parts) or "none"

    lines += [
        "",
        "Failure statuses: " + "; ".join(f"{r.target} {r.kind}: {statuses(r)}" for r in results) + ".",
        "",
    ]
    dependencies = [r for r in results if r.target not in ("functions", "none")]
    ledger = all(r.acked_missing == r.lost == r.doubled == 0 and r.settled for r in results)
    no_loss = all(r.predict_failed == 0 for r in dependencies)
    redis_frozen = [r.predict_p99_down_ms for r in results if (r.target, r.kind) == ("redis", "freeze")]
    db_frozen = [r.ingest_fail_max_ms for r in results
                 if r.target in ("pgbouncer", "postgres") and r.kind == "freeze"]  # fmt: skip
    dead_after = sum(r.failed_after_recovery for r in results if r.kind in ("stop", "kill"))

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    lines += [
        "Targets:",
        f"- Predict with explicit features loses nothing while a dependency fails, any kind: {verdict(no_loss)}.",
        f"- Ingest acknowledges nothing it did not store, and after redelivery every vector is stored exactly once, every row: {verdict(ledger)}.",
    ]
    control = [r.predict_p99_down_ms for r in results if r.target == "none"]
    if redis_frozen:
        frozen = max(redis_frozen)
        text = f"- Predict p99 with Redis frozen under 20 ms: {verdict(frozen < 20)} ({frozen:.1f} ms"
        if control:
            text += f"; the control row, nothing failing: {control[0]:.1f} ms, ratio {frozen / control[0]:.2f}x"
            if control[0] >= 20:
                text += "; the machine's own noise is over the target by itself, so this run cannot tell"
        lines.append(text + ").")
    if db_frozen:
        lines.append(f"- Ingest answers 503 within a second with the database path frozen: {verdict(max(db_frozen) < 1000)} (slowest {max(db_frozen):,.0f} ms).")
    lines += [
        f"- No request fails after a dead dependency is back (stop, kill): {verdict(dead_after == 0)} ({dead_after} failed).",
        "",
        END,
    ]  # fmt: skip
    return "\n".join(lines)


def command(args) -> str:
    flags = "" if args.kinds == ",".join(KINDS) and args.targets == ",".join(TARGETS) else \
        f" --targets {args.targets} --kinds {args.kinds}"
    return (f".venv/bin/python benchmarks/bench_reliability.py --no-reload --down {args.down:g} "
            f"--freeze {args.freeze:g}{flags}")


def render_reload(runs: list[tuple[ReloadResult, dict]], args, took: float) -> str:
    lines = [
        SECTION,
        "",
        (f"`.venv/bin/python benchmarks/bench_reliability.py --rate {args.rate:g} --duration {args.duration:g}"
         f"{f' --reload-nice {args.reload_nice}' if args.reload_nice else ''}` "
         f"({datetime.now(UTC):%Y-%m-%d}, {took:.0f} s wall, {len(runs)} runs)."),
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end (shared with other jobs).",
        f"Predict (one worker) takes {args.rate:,.0f} req/s open-loop for {args.duration:g} s (single rows, every one a cache",
        "miss; latency counts from each request's due time, so a queue shows). The first 2 s are the",
        "generator's ramp and not counted; 2-6 s is steady state; from 6 s on, five reloads go to the",
        "reload function one after the other, one of them a corrupt artifact (the MOJO cut in half), and",
        "predict swaps through the Redis reload channel. Each reload run follows a control run with the",
        "same windows and no reload, which shows how much p99 moves on this shared machine by itself.",
        "Each run starts a fresh predict process."
        + (f" The reload function runs at CPU niceness {args.reload_nice}, standing in for its own"
           " pod: on a cluster it does not share the predict replica's CPU." if args.reload_nice else ""),
        "",
        "| run | requests | achieved req/s | non-200 | steady p50 ms | steady p99 ms | p50 ms from 6 s | p99 ms from 6 s | p99 ratio | versions served | older version after newer | generator stall ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]  # fmt: skip
    notes = []
    all_ok = True
    for n, (r, extra) in enumerate(runs, 1):
        ratio = r.p99_ratio
        kind = "control, no reload" if extra["control"] else "five reloads"
        if not extra["control"]:
            all_ok &= r.non_200 == 0 and ratio <= 2.0
        lines.append(
            f"| {n}: {kind} | {r.sent:,} | {r.achieved_rps:,.0f} | {r.non_200} | {r.steady_p50_ms:.2f} | {r.steady_p99_ms:.2f} | "
            f"{r.reload_p50_ms:.2f} | {r.reload_p99_ms:.2f} | {ratio:.2f}x | {' -> '.join(map(str, r.versions))} | "
            f"{r.regressions} | {r.generator_lag_ms:,.0f} |"
        )
        if extra["control"]:
            continue
        answers = ", ".join(
            f"v{s.version} {kind}: {s.status}"
            for s, (_, kind) in zip(r.steps, extra["plan"], strict=True)
        )
        swap = ", ".join(f"{(s.seen - s.posted) * 1e3:,.0f}" for s in r.steps if s.seen is not None)
        notes.append(
            f"- Run {n}: reload answers {answers}; from the reload request to the first answer with the new version {swap} ms;"
            f" non-200 {r.statuses or 'none'} ({extra['stale']} on connections idle > 1 s);"
            f" predict RSS {extra['before'] / 2**20:,.0f} -> {extra['after'] / 2**20:,.0f} MiB."
        )
    controls = [r.p99_ratio for r, extra in runs if extra["control"]]
    noisy = max(controls, default=0.0) > 2.0
    zero = all(r.non_200 == 0 for r, _ in runs)
    verdict = (
        f"Target: zero non-200 during reloads: **{'met' if zero else 'not met'}**. p99 during reloads"
        f" within 2x of steady state: **{'met' if all_ok else 'not met'}** in the reload runs"
    )
    if noisy:
        verdict += (
            f", but the control runs moved by up to {max(controls):.1f}x without any reload, so on this"
            " machine the ratio does not separate the reloads' cost from the noise: treat it as"
            " inconclusive here (see RELIABILITY.md, findings)."
        )
    else:
        verdict += "; the control runs stayed within 2x, so the ratio is meaningful here."
    lines += ["", *notes, "",
              f"The generator drops connections idle for {args.client_idle:g} s (the server closes them after 2 s).",
              "", verdict, "", ""]  # fmt: skip
    return "\n".join(lines)


def write_generated(text: str, path: Path = REPO / "RELIABILITY.md") -> None:
    """Replace the generated block of RELIABILITY.md; the prose around it is kept."""
    current = path.read_text()
    pattern = re.compile(rf"{re.escape(BEGIN)}.*?{re.escape(END)}", re.DOTALL)
    if not pattern.search(current):
        raise SystemExit(f"{path.name}: no generated block ({BEGIN} ... {END}) to replace")
    path.write_text(pattern.sub(lambda _: text, current, count=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="predict req/s during the reloads")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of the reload run")
    ap.add_argument("--predict-rate", type=float, default=100.0, help="predict req/s during faults")
    ap.add_argument("--ingest-rate", type=float, default=10.0, help="ingest events/s during faults")
    ap.add_argument("--down", type=float, default=5.0, help="seconds each fault lasts")
    ap.add_argument("--freeze", type=float, default=20.0, help="seconds a freeze (SIGSTOP) lasts")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument(
        "--client-idle",
        type=float,
        default=1.0,
        help="seconds the generator keeps an idle connection (server keep-alive: 2 s)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="reload runs")
    ap.add_argument(
        "--reload-nice", type=int, default=0,
        help="CPU niceness of the reload function (stands in for its own pod's CPU)",
    )  # fmt: skip
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--no-reload", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()

    models = corpus()
    with tempfile.TemporaryDirectory(prefix="converge-rel-") as tmp:
        work = Path(tmp)
        stack = Stack(work)
        try:
            settings = stack.start()
            asyncio.run(migrate(settings))

            async def prepare() -> None:
                pool = await create_pool(settings, min_size=0)
                try:
                    mojo, rows = models["binomial"]
                    await register_model(
                        settings, pool, settings.default_model, mojo, rows, promote=True
                    )
                finally:
                    await pool.close()

            asyncio.run(prepare())
            if not args.no_faults:
                started = time.perf_counter()
                results = asyncio.run(run_faults(stack, settings, models, work, args))
                text = render_faults(results, args, time.perf_counter() - started)
                print(text)
                if not args.no_write:
                    write_generated(text)
            if not args.no_reload:
                started = time.perf_counter()
                runs = []
                for _ in range(args.repeat):  # a control run (no reload) before each reload run
                    runs.append(
                        asyncio.run(run_reloads(settings, models, work, args, control=True))
                    )
                    runs.append(asyncio.run(run_reloads(settings, models, work, args)))
                text = render_reload(runs, args, time.perf_counter() - started)
                print(text)
                if not args.no_write:
                    write_section(text, SECTION)
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
