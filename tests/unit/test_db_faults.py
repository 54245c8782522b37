"""Which database errors are outages (a 503 the caller may retry) and which are bugs in the SQL."""

from __future__ import annotations

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
