"""Which database errors are outages (a 503 the caller may retry) and which are bugs in the SQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from converge.db import is_unavailable


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"),
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.exceptions.InternalClientError("cannot switch to state 21; another operation (2) is in progress"),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
    ],
)
def test_a_connection_left_broken_by_a_fault_is_an_outage(exc):
    assert is_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UndefinedColumnError("column x does not exist"),
        asyncpg.exceptions.InterfaceError("the server expects 2 arguments, 1 was passed"),
        ValueError("not a database error"),
    ],
)
def test_errors_in_the_request_or_the_code_are_not_outages(exc):
    assert not is_unavailable(exc)


async def test_a_write_refused_while_pgbouncer_waits_to_log_in_again_is_tried_again_after_the_wait():
    from converge.db import LOGIN_RETRY_WAIT_S, DatabaseUnavailable, once_more_if_dropped

    calls = []

    async def work():
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            cause = asyncpg.exceptions.ProtocolViolationError(
                "server login has been failing, try again later (server_login_retry)"
            )
            raise DatabaseUnavailable("feature upsert failed") from cause
        return "written"

    assert await once_more_if_dropped(work) == "written"
    assert len(calls) == 2 and calls[1] - calls[0] >= LOGIN_RETRY_WAIT_S
