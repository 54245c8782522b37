"""The cache's pipelined Redis connection against real Redis servers: replies in order under
concurrency, AUTH and SELECT, error replies, and an outage it recovers from."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis as redis_py

from converge.cache.resp import RespClient, RespError
from converge.stack.procs import free_port
from converge.stack.redis import Redis

pytestmark = pytest.mark.integration

SET_WITH_TTL = "for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[i + 1], 'EX', ARGV[1]) end return #KEYS"


async def test_concurrent_commands_get_their_own_replies(redis_server):
    sync = redis_py.Redis.from_url(redis_server.url)
    sync.mset({f"resp:k{i}": f"v{i}" for i in range(300)})
    client = RespClient.from_url(redis_server.url)
    try:
        keys = [[f"resp:k{i}", f"resp:missing{i}"] for i in range(300)]
        replies = await asyncio.gather(*(client.mget(k) for k in keys))
        assert replies == [[f"v{i}".encode(), None] for i in range(300)]
    finally:
        await client.aclose()
        sync.close()


async def test_eval_writes_with_a_ttl_and_error_replies_raise(redis_server):
    sync = redis_py.Redis.from_url(redis_server.url)
    client = RespClient.from_url(redis_server.url)
    try:
        assert await client.eval(SET_WITH_TTL, ["resp:a", "resp:b"], [60, b"1", b"2"]) == 2
        assert sync.mget(["resp:a", "resp:b"]) == [b"1", b"2"]
        assert 0 < sync.ttl("resp:a") <= 60
        with pytest.raises(RespError, match="unknown command"):
            await client.execute("NOSUCHCOMMAND")
        assert await client.mget(["resp:a"]) == [b"1"]  # the connection still works
    finally:
        await client.aclose()
        sync.close()


@pytest.fixture
def private_redis(tmp_path):
    service = Redis(tmp_path, free_port(), password="p@ss word")
    service.start()
    yield service
    service.stop()


async def test_password_and_database_from_the_url(private_redis):
    url = private_redis.url.removesuffix("/0") + "/3"
    sync = redis_py.Redis.from_url(url)
    sync.set("resp:db3", "here")
    client = RespClient.from_url(url)
    wrong = RespClient.from_url(url.replace("p%40ss%20word", "nope"))
    try:
        assert await client.mget(["resp:db3"]) == [b"here"]
        with pytest.raises(ConnectionError, match="AUTH"):
            await wrong.mget(["resp:db3"])
    finally:
        await client.aclose()
        await wrong.aclose()
        sync.close()


async def test_an_outage_fails_fast_and_the_next_command_reconnects(private_redis):
    client = RespClient.from_url(private_redis.url, timeout_s=0.5)
    try:
        assert await client.mget(["resp:x"]) == [None]
        private_redis.stop()
        started = time.monotonic()
        with pytest.raises((ConnectionError, TimeoutError)):
            await client.mget(["resp:x"])
        with pytest.raises((ConnectionError, TimeoutError)):
            await client.mget(["resp:x"])
        assert time.monotonic() - started < 2.0  # each attempt is bounded by the timeout
        private_redis.start()
        assert await client.mget(["resp:x"]) == [None]
    finally:
        await client.aclose()


def test_urls_it_does_not_handle_stay_with_redis_py():
    assert RespClient.from_url("unix:///var/run/redis.sock") is None
    client = RespClient.from_url("rediss://user:secret@cache.example:6380/2")
    assert client is not None
    assert (client.host, client.port, client.db, client.username, client.password, client.tls) == (
        "cache.example", 6380, 2, "user", "secret", True)
