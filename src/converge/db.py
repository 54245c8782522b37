"""asyncpg pool for Postgres behind PgBouncer, and the mapping of connection faults to one error.

PgBouncer runs in transaction pool mode: consecutive statements of one client may run on different
server connections. asyncpg's named prepared-statement cache then hits statements that do not exist
(or, worse, that exist with another shape and decode rows wrongly), so the cache is off
(``statement_cache_size=0``). Nothing here relies on session state: no ``SET`` outside a
transaction, no session advisory locks, no ``LISTEN``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import asyncpg
import orjson

from converge.errors import ConvergeError, DatabaseUnavailable
from converge.resilience import caused_by_timeout
from converge.settings import Settings, get_settings

__all__ = [
    "DatabaseUnavailable",
    "bounded_connection",
    "connection",
    "create_pool",
    "is_unavailable",
    "once_more_if_dropped",
    "translate_errors",
    "unavailable_guard",
]

P = ParamSpec("P")
R = TypeVar("R")

# Postgres error classes that mean "the server or the link is gone", not "your SQL is wrong".
# 08 connection exception, 57P01-57P03 shutdown / cannot connect now, 53300 too many connections.
# PgBouncer reports its own failures (server down, pool timeout) as 08P01. Serialization
# failures and deadlocks (40001, 40P01) are transient too: the whole transaction rolled back and
# retrying it is the documented remedy.
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300", "58000", "58030", "40001", "40P01"}


def _encode_jsonb(value: Any) -> bytes:
    # Binary jsonb wire format: a version byte (1) followed by the JSON text.
    return b"\x01" + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    """JSON codecs in binary format, so COPY (binary) works and orjson does the (de)serialising."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_jsonb, decoder=_decode_jsonb, format="binary"
    )
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=orjson.dumps, decoder=orjson.loads, format="binary"
    )


async def create_pool(settings: Settings | None = None, **overrides: Any) -> asyncpg.Pool:
    """A pool safe for PgBouncer transaction mode; connection failures raise DatabaseUnavailable.

    ``overrides`` go to :func:`asyncpg.create_pool` (e.g. ``min_size=0`` for a lazy pool).
    """
    settings = settings or get_settings()
    kwargs: dict[str, Any] = {
        "dsn": settings.database_url.get_secret_value(),
        "min_size": settings.db_pool_min,
        "max_size": settings.db_pool_max,
        "command_timeout": settings.db_command_timeout_s,
        "statement_cache_size": 0,
        "init": _init_connection,
        # Drop idle links before PgBouncer or a NAT box does it behind our back.
        "max_inactive_connection_lifetime": 60.0,
    }
    kwargs.update(overrides)
    kwargs["min_size"] = min(kwargs["min_size"], kwargs["max_size"])
    try:
        return await asyncpg.create_pool(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - re-raised unless it is a connection fault
        if is_unavailable(exc):
            raise DatabaseUnavailable(f"cannot connect to the database: {_describe(exc)}") from exc
        raise


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` is a connection-level fault (retry later), not an error in the SQL."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, ConvergeError):
        return False
    if isinstance(exc, (OSError, asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    # SQLSTATE class 08 (incl. ConnectionDoesNotExistError and PgBouncer's 08P01 "server down").
    if isinstance(exc, asyncpg.exceptions.PostgresConnectionError):
        return True
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return "connection is closed" in str(exc) or "connection was closed" in str(exc) or (
            "another operation is in progress" in str(exc)  # a protocol left mid-way by a fault
        )
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state N; another operation is in progress": after a dropped or reset
        # server connection the protocol can be left mid-operation; the pool replaces it.
        return "another operation" in str(exc)
    if isinstance(exc, asyncpg.PostgresError):
        return getattr(exc, "sqlstate", None) in _UNAVAILABLE_SQLSTATES
    return False


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@asynccontextmanager
async def translate_errors(what: str = "database call") -> AsyncIterator[None]:
    """Re-raise connection-level faults inside the block as :class:`DatabaseUnavailable`."""
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) or not is_unavailable(exc):
            raise
        if isinstance(exc, DatabaseUnavailable):
            raise
        # Name the first fault, not a follow-up such as the failed ROLLBACK on the dead link.
        root: BaseException = exc
        while root.__context__ is not None and is_unavailable(root.__context__):
            root = root.__context__
        raise DatabaseUnavailable(f"{what} failed: {_describe(root)}") from exc


def unavailable_guard(what: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorator form of :func:`translate_errors` for coroutine methods."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            async with translate_errors(what):
                return await fn(*args, **kwargs)

        return inner

    return wrap


@asynccontextmanager
async def connection(pool: asyncpg.Pool, what: str = "database call") -> AsyncIterator[asyncpg.Connection]:
    """Acquire a pooled connection; faults while acquiring or using it become DatabaseUnavailable."""
    async with translate_errors(what):
        async with pool.acquire() as conn:
            yield conn


@asynccontextmanager
async def bounded_connection(
    pool: asyncpg.Pool, timeout_s: float, what: str = "database call"
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for work that must end within ``timeout_s``, acquiring included.

    Past the deadline the connection is terminated (its socket closed at once): a hung server or
    PgBouncer would otherwise hold the request, and the ROLLBACK after a cancelled statement, until
    the command timeout. The work then fails with :class:`DatabaseUnavailable` caused by a
    ``TimeoutError`` (which a breaker counts as a hang), and the pool opens a new connection next
    time. If the commit was sent before the deadline it may still have happened: callers retry
    only idempotent work.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with translate_errors(what):
        async with pool.acquire(timeout=timeout_s) as conn:
            expired = False

            def expire() -> None:
                nonlocal deadline, expired, timer
                if loop.time() - deadline > timeout_s:
                    # The timer itself is a whole deadline late: this process was stopped or
                    # starved, not the server slow. Give the server the time it was not watched.
                    deadline = loop.time() + timeout_s
                    timer = loop.call_at(deadline, expire)
                    return
                expired = True
                conn.terminate()

            timer = loop.call_at(deadline, expire)
            try:
                yield conn
            except Exception as exc:
                if expired:
                    raise TimeoutError(f"no answer within {timeout_s:g} s") from exc
                raise
            finally:
                timer.cancel()


async def once_more_if_dropped(work: Callable[[], Awaitable[R]]) -> R:
    """Run idempotent ``work``; if a connection fault other than a timeout ends it, run it once
    more. A pooled connection that PgBouncer or Postgres closed while it sat idle (a restart, a
    dropped link) fails its first use, and the pool hands out a new one for the second try. A
    timeout is not retried: the deadline has already spent the caller's time."""
    try:
        return await work()
    except DatabaseUnavailable as exc:
        if caused_by_timeout(exc):
            raise
        if _login_retry_pending(exc):
            await asyncio.sleep(LOGIN_RETRY_WAIT_S)
        return await work()


# After a failed server login PgBouncer refuses every client until its next attempt
# (`server_login_retry`: 0.05 s in the local stack). Waiting a little longer than that once turns
# a request in that window (right after a Postgres restart) into a success. The wait stays under
# the breaker's slow-failure mark (serving.runtime.SLOW_FAILURE_S), so a refusal is still cheap. The
# chart's PgBouncer retries every 1 s: there such a request still gets a 503 and is redelivered.
LOGIN_RETRY_WAIT_S = 0.06
_LOGIN_RETRY = "server login has been failing"


def _login_retry_pending(exc: BaseException | None) -> bool:
    while exc is not None:
        if _LOGIN_RETRY in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
