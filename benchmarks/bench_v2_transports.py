"""V2 transports: JSON REST, binary-tensor REST and gRPC, converge against KServe's own server.

One run, one model, same rows: converge's predict function (REST target and its ``predict-grpc``
target, as the images serve them) and KServe's Python model server hosting the MOJO the way a
KServe user does today (``benchmarks/kserve_mojo_server.py``: a ``kserve.Model`` scoring through
h2o-genmodel, with KServe's own gRPC server on). Every request carries new rows (cache misses).
Both gRPC servers get the very same request messages (tensors in ``contents``); converge's is also
measured with raw tensors (``raw_input_contents``, what Triton's client sends). KServe's server is
not sent binary REST bodies: its ``kserve.Model`` reads ``tensor.data``, which the binary
extension leaves empty. Closed loop, ``--clients`` callers back to back for ``--duration`` s.

Usage:  python benchmarks/bench_v2_transports.py [--duration 5] [--clients 16] [--batches 1,64]
Results replace the "## V2 transports" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


import grpc  # noqa: E402
import orjson  # noqa: E402
from _load import Conn  # noqa: E402
from _report import machine, publish  # noqa: E402
from _servers import kserve_server, local_stack  # noqa: E402
from _load import pct
from _predict_function import V2Bodies, prepare, start_predict

from converge.checkout import CORPUS, REPO
from converge.mojo import load_mojo  # noqa: E402
from converge.serving.testing import FunctionProcess, read_rows  # noqa: E402
from converge.serving.v2_binary import encode_tensor  # noqa: E402
from converge.serving.v2grpc import grpc_predict_v2_pb2 as pb  # noqa: E402
from converge.serving.v2grpc import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402
from converge.stack.procs import free_port  # noqa: E402

SECTION = "## V2 transports"
MODEL = "binomial"


class Columns(V2Bodies):
    """Batches of ``n`` fresh rows as V2 columns: one tensor per feature."""

    def batch(self, n: int) -> list[tuple[str, str, list]]:
        picked = [self._row(self.counter + i) for i in range(n)]  # new features: cache misses
        out = []
        for name in self.features:
            if name in self.categorical:
                values = ["" if r.get(name) is None else str(r[name]).removesuffix(".0") for r in picked]
                out.append((name, "BYTES", values))
            else:
                out.append((name, "FP64", [float(r[name]) for r in picked]))
        return out


def json_body(columns) -> tuple[bytes, bytes]:
    inputs = [{"name": n, "shape": [len(v)], "datatype": d, "data": v} for n, d, v in columns]
    return orjson.dumps({"inputs": inputs}), b""


def binary_body(columns) -> tuple[bytes, bytes]:
    raws = [encode_tensor(d, v) for _, d, v in columns]
    inputs = [
        {"name": n, "shape": [len(v)], "datatype": d, "parameters": {"binary_data_size": len(raw)}}
        for (n, d, v), raw in zip(columns, raws, strict=True)
    ]
    head = orjson.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}})
    return head + b"".join(raws), b"Inference-Header-Content-Length: %d\r\n" % len(head)


def grpc_message(columns, model: str, raw: bool) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model)
    for name, datatype, values in columns:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        if raw:
            request.raw_input_contents.append(encode_tensor(datatype, values))
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
        else:
            tensor.contents.fp64_contents.extend(values)
    return request


def summary(latencies: list[float], errors: int, took: float, rows: int) -> dict:
    return {
        "throughput": len(latencies) / took, "rows_s": len(latencies) * rows / took,
        "p50": pct(latencies, 0.5) * 1e3, "p99": pct(latencies, 0.99) * 1e3, "errors": errors,
    }  # fmt: skip


async def rest_loop(port: int, path: str, bodies: list[tuple[bytes, bytes]], clients: int, duration: float, rows: int) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors, index = 0, 0
    deadline = loop.time() + duration

    async def client() -> None:
        nonlocal index, errors
        conn = await Conn.open(port)
        while loop.time() < deadline and index < len(bodies):
            body, headers = bodies[index]
            index += 1
            start = loop.time()
            status, _ = await conn.post(path, body, headers)
            latencies.append(loop.time() - start)
            errors += status != 200
        conn.close()

    t0 = loop.time()
    await asyncio.gather(*(client() for _ in range(clients)))
    return summary(latencies, errors, loop.time() - t0, rows)


async def grpc_loop(port: int, messages: list, clients: int, duration: float, rows: int) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors, index = 0, 0
    deadline = loop.time() + duration
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def client() -> None:
            nonlocal index, errors
            while loop.time() < deadline and index < len(messages):
                message = messages[index]
                index += 1
                start = loop.time()
                try:
                    await stub.ModelInfer(message, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(loop.time() - start)

        t0 = loop.time()
        await asyncio.gather(*(client() for _ in range(clients)))
        return summary(latencies, errors, loop.time() - t0, rows)


async def run_batch(ports: dict, columns: Columns, rows: int, args) -> dict:
    count = int(4000 * args.duration / max(1, rows // 8))
    path = f"/v2/models/{MODEL}/infer"
    batches = [columns.batch(rows) for _ in range(count)]
    grpc_contents = [grpc_message(c, MODEL, raw=False) for c in batches]
    scenarios = {
        "converge REST JSON": lambda: rest_loop(ports["rest"], path, [json_body(c) for c in batches], args.clients, args.duration, rows),
        "converge REST binary": lambda: rest_loop(ports["rest"], path, [binary_body(c) for c in batches], args.clients, args.duration, rows),
        "converge gRPC": lambda: grpc_loop(ports["grpc"], grpc_contents, args.clients, args.duration, rows),
        "converge gRPC raw": lambda: grpc_loop(ports["grpc"], [grpc_message(c, MODEL, raw=True) for c in batches], args.clients, args.duration, rows),
        "KServe REST JSON": lambda: rest_loop(ports["kserve"], path, [json_body(c) for c in batches], args.clients, args.duration, rows),
        "KServe gRPC": lambda: grpc_loop(ports["kserve_grpc"], grpc_contents, args.clients, args.duration, rows),
    }
    results = {}
    for name, scenario in scenarios.items():
        columns.counter += count * rows  # fresh rows for every scenario
        await scenario()  # warm-up pass (short): first calls load and connect
        results[name] = await scenario()
        print(rows, name, results[name], flush=True)
    return results


def render(results: dict, args, took: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION, "",
        f"Command: `python benchmarks/bench_v2_transports.py --duration {args.duration:g} --clients {args.clients}"
        f" --batches {args.batches}` ({when}, {took:.0f} s). Machine: {machine()}, shared with other work:"
        " compare rows of one run. Model `binomial`; one worker per server, loopback, every request new"
        " rows (cache misses); closed loop. KServe = `kserve.ModelServer` (0.21.0) with a `kserve.Model`"
        " scoring through h2o-genmodel (JPype), its own REST and gRPC servers.", "",
        "| rows/request | transport | req/s | rows/s | p50 ms | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for rows, scenarios in results.items():
        for name, r in scenarios.items():
            lines.append(
                f"| {rows} | {name} | {r['throughput']:.0f} | {r['rows_s']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} |"
            )
    lines += ["", "Ratios, same run (throughput):", ""]
    for rows, s in results.items():
        base = s["converge REST JSON"]["throughput"]
        lines.append(
            f"- {rows} rows/request: converge binary REST {s['converge REST binary']['throughput'] / base:.2f}x"
            f" and gRPC {s['converge gRPC']['throughput'] / base:.2f}x (raw {s['converge gRPC raw']['throughput'] / base:.2f}x)"
            f" its JSON REST; converge gRPC {s['converge gRPC']['throughput'] / s['KServe gRPC']['throughput']:.1f}x"
            f" KServe's gRPC, converge JSON REST {base / s['KServe REST JSON']['throughput']:.1f}x KServe's"
        )
    return "\n".join(lines) + "\n\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    ap.add_argument("--clients", type=int, default=16, help="concurrent callers")
    ap.add_argument("--batches", default="1,64", help="rows per request, comma-separated")
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = ap.parse_args()

    corpus = CORPUS
    started = time.perf_counter()
    results: dict = {}
    mojo = (corpus / f"{MODEL}.zip").read_bytes()
    rows = read_rows(corpus / f"{MODEL}.input.csv", 200)
    with tempfile.TemporaryDirectory(prefix="converge-bench-v2t-") as tmp:
        work = Path(tmp)
        with local_stack(work, MODEL) as settings:
            asyncio.run(prepare(settings, {MODEL: (mojo, rows)}))
            rest = start_predict(settings, work, "inline")
            grpc_fn = FunctionProcess("predict-grpc", REPO / "functions" / "main.py", settings, free_port(), work / "grpc.log")
            try:
                grpc_fn.start()
                with kserve_server(MODEL, corpus / f"{MODEL}.zip", work / "kserve.log", grpc=True) as (kport, kgrpc):
                    ports = {"rest": rest.port, "grpc": grpc_fn.port, "kserve": kport, "kserve_grpc": kgrpc}
                    columns = Columns(load_mojo(mojo), rows)
                    for batch in [int(b) for b in args.batches.split(",")]:
                        results[batch] = asyncio.run(run_batch(ports, columns, batch, args))
            finally:
                grpc_fn.stop()
                rest.stop()
    publish(render(results, args, time.perf_counter() - started), SECTION, not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
