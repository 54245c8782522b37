"""A slow, lossy network link in front of one local service: ``tc netem`` done in user space.

Why not ``tc netem`` itself: the kernels of the machines this runs on are built without
``sch_netem`` (``CONFIG_NET_SCH_NETEM`` is not set), so ``tc qdisc add ... netem`` fails with
"Specified qdisc kind is unknown". What they do have is network namespaces and TUN devices, which
give the same thing a packet at a time:

    client (host namespace) --TCP--> 10.x.y.2:port
        -> TUN device "cvl<pid>h" (host, 10.x.y.1) -> this process -> TUN device in a namespace of
           its own (10.x.y.2) -> relay listening there -> 127.0.0.1:<target port> (host namespace)

This process moves every IP packet between the two TUN devices; while impaired it holds each one
for ``delay`` and drops it with probability ``loss``, in both directions, as ``netem delay 50ms loss
5%`` on both ends of a veth pair would. The client's and the relay's kernels see real loss and
retransmit, as they would on a bad network. Both devices and the namespace disappear with the
process, however it ends.

Run as ``python _link.py --target-port P`` (root needed): it prints ``<address> <port>`` once the
link is up, then reads commands on stdin: ``impair <delay_ms> <loss>`` and ``clear``, each answered
``ok``. :class:`Link` drives it from a test or a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import fcntl
import os
import random
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def link_addresses(pid: int) -> tuple[str, str]:
    """A /30 of 10.0.0.0/8 derived from the pid, so concurrent links never share addresses."""
    a, b, c = (pid >> 14) & 0xFF, (pid >> 6) & 0xFF, (pid & 0x3F) * 4
    return f"10.{a}.{b}.{c + 1}", f"10.{a}.{b}.{c + 2}"


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def configure(device: str, local: str, peer: str) -> None:
    for argv in (
        ["ip", "addr", "add", local, "peer", peer, "dev", device],
        ["ip", "link", "set", device, "up"],
    ):
        subprocess.run(argv, check=True, capture_output=True)


def far_end(device: str, local: str, peer: str, port: int) -> tuple[int, socket.socket]:
    """In a new network namespace (this thread only): the far TUN device and the relay's listener.
    The namespace lives on as long as the device and the socket are open."""
    out: dict[str, object] = {}

    def build() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            fd = open_tun(device)
            configure(device, local, peer)  # `ip` runs in this thread's namespace
            listener = socket.create_server((local, port), backlog=256)
            listener.setblocking(False)
            out["value"] = (fd, listener)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=build)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]  # type: ignore[return-value]


class Wire:
    """Moves packets from one TUN device to another, delayed and thinned while impaired."""

    def __init__(self, loop: asyncio.AbstractEventLoop, src: int, dst: int) -> None:
        self.loop, self.src, self.dst = loop, src, dst
        self.delay_s = 0.0
        self.loss = 0.0
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        loop.add_reader(src, self._read)

    def _read(self) -> None:
        while True:
            try:
                packet = os.read(self.src, 65536)
            except BlockingIOError:
                return
            if self.loss and random.random() < self.loss:
                continue
            if not self.delay_s and not self._queue:
                self._write(packet)
                continue
            # One queue per direction keeps the packets in order (timers with equal due times
            # would not).
            self._queue.append((self.loop.time() + self.delay_s, packet))
            if self._timer is None:
                self._timer = self.loop.call_at(self._queue[0][0], self._flush)

    def _flush(self) -> None:
        self._timer = None
        now = self.loop.time()
        while self._queue and self._queue[0][0] <= now:
            self._write(self._queue.popleft()[1])
        if self._queue:
            self._timer = self.loop.call_at(self._queue[0][0], self._flush)

    def _write(self, packet: bytes) -> None:
        try:
            os.write(self.dst, packet)
        except OSError:
            pass  # a full device queue drops the packet, as a full link would


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def serve(target_port: int, port: int) -> None:
    loop = asyncio.get_running_loop()
    pid = os.getpid()
    near, far = link_addresses(pid)
    near_dev, far_dev = f"cvl{pid}h", f"cvl{pid}n"
    near_fd = open_tun(near_dev)
    configure(near_dev, near, far)
    far_fd, listener = far_end(far_dev, far, near, port)
    wires = [Wire(loop, near_fd, far_fd), Wire(loop, far_fd, near_fd)]

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(relay, sock=listener)
    print(f"{far} {port}", flush=True)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with server:
        while line := (await stdin.readline()).decode().split():
            if line[0] == "impair":
                for wire in wires:
                    wire.delay_s, wire.loss = float(line[1]) / 1000.0, float(line[2])
            elif line[0] == "clear":
                for wire in wires:
                    wire.delay_s, wire.loss = 0.0, 0.0
            print("ok", flush=True)


class Link:
    """A running link process in front of ``127.0.0.1:target_port``; clients use ``host:port``."""

    def __init__(self, target_port: int, *, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or target_port
        self.host = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Link:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()),
             "--target-port", str(self.target_port), "--port", str(self.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        first = self.proc.stdout.readline().split()
        if len(first) != 2:
            self.proc.kill()
            why = self.proc.communicate(timeout=10)[1].strip().splitlines()[-1:]
            raise RuntimeError(f"link to port {self.target_port} did not come up: {why}")
        self.host = first[0]
        return self

    def _command(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError(f"link: {line!r} not acknowledged")

    def impair(self, delay_ms: float = 50.0, loss: float = 0.05) -> None:
        self._command(f"impair {delay_ms:g} {loss:g}")

    def clear(self) -> None:
        self._command("clear")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class BehindLink:
    """A local service as seen through a link: its host and port are the link's, everything else
    is the service's (e.g. a Postgres for a PgBouncer that must reach it over the link)."""

    def __init__(self, service: Any, link: Link) -> None:
        self._service, self.host, self.port = service, link.host, link.port

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def url_via(url: str, port: int, link: Link) -> str:
    """``url`` of the service on ``127.0.0.1:port``, pointed at the link instead."""
    return url.replace(f"127.0.0.1:{port}", f"{link.host}:{link.port}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--port", type=int, help="port on the link's far address (default: the target's)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("a link needs root: it creates a network namespace and TUN devices")
    asyncio.run(serve(args.target_port, args.port or args.target_port))


if __name__ == "__main__":
    main()
