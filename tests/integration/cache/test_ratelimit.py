"""The rate limiter on the shared Redis, in memory, and across a Redis outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from limits import parse

from posomni.cache.breaker import BreakerState
from posomni.cache.ratelimit import RateLimiter
from posomni.cache.service import CacheService
from tests.conftest import command_calls
from tests.integration.cache.conftest import MakeCache
from tests.integration.cache.servers import Servers

LIMIT = "3/2second"


@pytest.fixture
async def limiter(shared_cache: CacheService) -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter(shared_cache)
    yield limiter
    await limiter.close()


async def _refused_then_recovers(limiter: RateLimiter) -> None:
    results = [await limiter.hit(LIMIT, "pin", "user-7") for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, True]
    assert [r.remaining for r in results] == [2, 1, 0]

    refused = await limiter.hit(LIMIT, "pin", "user-7")
    assert not refused.allowed
    assert refused.remaining == 0
    assert 0 < refused.retry_after_seconds <= 2
    # Other identifiers have their own windows.
    assert (await limiter.hit(LIMIT, "pin", "user-8")).allowed

    await asyncio.sleep(refused.retry_after_seconds + 0.05)
    again = await limiter.hit(LIMIT, "pin", "user-7")
    assert again.allowed
    assert again.retry_after_seconds == 0


async def test_redis_limit_refuses_at_the_limit_and_recovers_after_the_window(
    limiter: RateLimiter, redis_client: aioredis.Redis, namespace: str
) -> None:
    await _refused_then_recovers(limiter)
    assert [key async for key in redis_client.scan_iter(match=f"{namespace}:limits:*")] != []


async def test_memory_limit_refuses_at_the_limit_and_recovers_after_the_window(make_cache: MakeCache) -> None:
    limiter = RateLimiter(make_cache())
    try:
        await _refused_then_recovers(limiter)
    finally:
        await limiter.close()


async def test_two_processes_share_one_limit_through_redis(
    shared_cache: CacheService, limiter: RateLimiter, make_cache: MakeCache, redis_client: aioredis.Redis
) -> None:
    kwargs = redis_client.connection_pool.connection_kwargs
    other_cache = make_cache(REDIS_HOST=str(kwargs["host"]), REDIS_PORT=str(kwargs["port"]))
    other = RateLimiter(other_cache)
    try:
        assert (await limiter.hit("3/minute", "login:address", "127.0.0.9")).allowed
        assert (await other.hit("3/minute", "login:address", "127.0.0.9")).allowed
        assert (await limiter.hit("3/minute", "login:address", "127.0.0.9")).allowed
        assert not (await other.hit("3/minute", "login:address", "127.0.0.9")).allowed
    finally:
        await other.close()


async def test_admit_answers_zero_in_one_round_trip_then_the_wait(
    limiter: RateLimiter, redis_client: aioredis.Redis
) -> None:
    # The moving window is a Lua script in Redis: one EVALSHA is one round trip.
    await limiter.admit(LIMIT, "client", "warm-up")  # loads the script
    before = await command_calls(redis_client, "evalsha")
    await limiter.hit(LIMIT, "client", "warm-up")
    assert await command_calls(redis_client, "evalsha") - before == 2  # `hit` also reads the window's statistics

    before = await command_calls(redis_client, "evalsha")
    assert [await limiter.admit(LIMIT, "client", "10.0.0.7") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await command_calls(redis_client, "evalsha") - before == 3

    wait = await limiter.admit(LIMIT, "client", "10.0.0.7")
    assert 0 < wait <= 2
    assert not (await limiter.test(LIMIT, "client", "10.0.0.7")).allowed
    await asyncio.sleep(wait + 0.05)
    assert await limiter.admit(LIMIT, "client", "10.0.0.7") == 0.0


async def test_test_does_not_consume_and_clear_resets(limiter: RateLimiter) -> None:
    item = parse("2/minute")
    assert (await limiter.test(item, "login:account", "alice")).allowed
    await limiter.hit(item, "login:account", "alice")
    await limiter.hit(item, "login:account", "alice")
    checked = await limiter.test(item, "login:account", "alice")
    assert not checked.allowed
    assert 0 < checked.retry_after_seconds <= 60
    await limiter.clear(item, "login:account", "alice")
    assert (await limiter.test(item, "login:account", "alice")).remaining == 2


@pytest.mark.redis
async def test_limiter_keeps_answering_when_redis_dies_midway(servers: Servers, make_cache: MakeCache) -> None:
    server = await servers.redis()
    cache = make_cache(port=server.port, probe_interval=30)
    limiter = RateLimiter(cache)
    try:
        assert (await limiter.hit("3/minute", "pin", "user-1")).remaining == 2
        await server.kill()
        # No exception, and the limit is still enforced, now counted in this process's memory.
        results = [await limiter.hit("3/minute", "pin", "user-1") for _ in range(6)]
        assert cache.breaker_state is BreakerState.OPEN
        assert [r.allowed for r in results] == [True, True, True, False, False, False]
        assert results[-1].retry_after_seconds > 0
    finally:
        await limiter.close()
