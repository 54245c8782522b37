"""A small pipelined Redis connection for the prediction cache's hot path.

The predict function makes a Redis round trip for every request (the cache look-up). This client
spends 0.65x redis-py asyncio's CPU per one-key ``MGET`` with one caller and 0.34x with 32 callers
sharing it (56 against 86 µs, 15.5 against 45.5 µs; ``benchmarks/bench_cache_client.py``,
BENCHMARKS.md "Cache client"). It does only what the cache needs: send commands on one connection,
match replies in order (hiredis parses them), fail fast. Everything else keeps using redis-py.

Faults: a command that cannot be sent or answered within ``timeout_s`` raises ``ConnectionError`` or
``TimeoutError`` (both are outages to the circuit breakers); the connection is dropped and the next
command reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis


class RespError(Exception):
    """Redis answered with an error reply."""


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespClient:
    """One pipelined connection; commands from concurrent tasks share it, replies come in order."""

    def __init__(
        self, host: str, port: int, *, db: int = 0, username: str | None = None,
        password: str | None = None, tls: bool = False, timeout_s: float = 0.5,
    ) -> None:  # fmt: skip
        self.host, self.port, self.db = host, port, db
        self.username, self.password, self.tls = username, password, tls
        self.timeout_s = timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def from_url(cls, url: str, timeout_s: float = 0.5) -> RespClient | None:
        """A client for ``redis://`` or ``rediss://`` URLs; None for anything else (unix sockets,
        sentinels), which stay with redis-py."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            return None
        path = parts.path.strip("/")
        return cls(
            parts.hostname, parts.port or 6379, db=int(path) if path.isdigit() else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss", timeout_s=timeout_s,
        )  # fmt: skip

    async def execute(self, *args: Any) -> Any:
        writer = None
        try:
            async with asyncio.timeout(self.timeout_s):
                writer = self._writer if self._writer is not None else await self._connect()
                reply = await self._send(writer, args)
        except TimeoutError:
            if writer is not None:  # a hung server: later replies could not be matched any more
                self._drop(writer, TimeoutError(f"redis {self.host}:{self.port}: no reply in time"))
            raise
        if isinstance(reply, hiredis.ReplyError):
            raise RespError(str(reply))
        return reply

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        return await self.execute(b"MGET", *keys)

    async def eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self.execute(b"EVAL", script, len(keys), *keys, *args)

    def _send(self, writer: asyncio.StreamWriter, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Write one command; the returned future gets its reply (replies come in order)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        writer.write(_encode(args))
        return future

    async def _connect(self) -> asyncio.StreamWriter:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is not None:
                return self._writer
            context = ssl.create_default_context() if self.tls else None
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=context)
            except OSError as exc:
                raise ConnectionError(f"redis {self.host}:{self.port}: {exc}") from None
            parser = hiredis.Reader()
            self._writer = writer
            self._reader_task = asyncio.get_running_loop().create_task(
                self._read_replies(reader, writer, parser)
            )
            setup: list[tuple[Any, ...]] = []
            if self.password is not None:
                auth = (self.username, self.password) if self.username else (self.password,)
                setup.append((b"AUTH", *auth))
            if self.db:
                setup.append((b"SELECT", self.db))
            for command in setup:
                reply = await self._send(writer, command)
                if isinstance(reply, hiredis.ReplyError):
                    error = ConnectionError(f"redis {command[0].decode()}: {reply}")
                    self._drop(writer, error)
                    raise error
            return writer

    async def _read_replies(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: hiredis.Reader
    ) -> None:
        error: BaseException = ConnectionError(f"redis {self.host}:{self.port}: connection closed")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    if self._waiting:
                        future = self._waiting.popleft()
                        if not future.done():
                            future.set_result(reply)
        except (OSError, hiredis.ProtocolError) as exc:
            error = ConnectionError(f"redis {self.host}:{self.port}: {exc}")
        finally:
            self._drop(writer, error)

    def _drop(self, writer: asyncio.StreamWriter, error: BaseException) -> None:
        """Forget this connection and fail everything still waiting on it: after a timeout or a
        broken pipe, replies can no longer be matched to their commands."""
        if self._writer is writer:
            self._writer = None
            writer.close()
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(error)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._drop(self._writer, ConnectionError("redis client closed"))
        if self._reader_task is not None:
            self._reader_task.cancel()
