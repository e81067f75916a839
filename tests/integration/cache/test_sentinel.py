"""Sentinel failover with real processes: one master, one replica, three sentinels on loopback."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from posomni.cache.breaker import BreakerState
from posomni.cache.ratelimit import RateLimiter
from posomni.cache.service import CacheService
from tests.integration.cache.conftest import MakeCache
from tests.integration.cache.servers import HOST, MASTER_NAME, RedisProcess, Servers, direct_client, wait_for

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def _replica_in_sync(replica: RedisProcess) -> None:
    client = direct_client(replica.port)
    try:
        deadline = time.monotonic() + 5
        while (await client.info("replication")).get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync with the master"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def _sentinels_ready(sentinels: list[RedisProcess]) -> None:
    # A failover needs every sentinel to know the replica and its two peers (found through hello messages,
    # sent every 2 s), or the vote cannot reach a majority.
    clients = [direct_client(s.port) for s in sentinels]
    try:
        deadline = time.monotonic() + 10
        while True:
            replicas = [await c.sentinel_slaves(MASTER_NAME) for c in clients]
            peers = [await c.sentinel_sentinels(MASTER_NAME) for c in clients]
            if all(len(r) == 1 for r in replicas) and all(len(p) == len(sentinels) - 1 for p in peers):
                return
            assert time.monotonic() < deadline, f"sentinels not ready: replicas={replicas} peers={peers}"
            await asyncio.sleep(0.1)
    finally:
        for client in clients:
            await client.aclose()


async def test_writes_follow_a_failover_to_the_promoted_replica_without_raising(
    servers: Servers, make_cache: MakeCache, namespace: str
) -> None:
    master = await servers.redis()
    replica = await servers.redis("--replicaof", HOST, str(master.port))
    await _replica_in_sync(replica)
    sentinels = [await servers.sentinel(master.port) for _ in range(3)]
    await _sentinels_ready(sentinels)

    cache: CacheService = make_cache(sentinels=[s.port for s in sentinels], probe_interval=0.5)
    await cache.start()
    await wait_for(lambda: cache.snapshot().master == master.address, 3, "the service sees the master")
    assert cache.topology == "sentinel"
    await cache.set("before", "1")

    failures: list[BaseException] = []
    written = 0

    async def sell() -> None:
        # A register writing continuously; any exception reaching it is a failure of the service.
        nonlocal written
        try:
            await cache.set(f"sale:{written}", "paid", ttl_seconds=300)
            written += 1
        except Exception as exc:
            failures.append(exc)

    await master.kill()
    killed_at = time.monotonic()
    deadline = killed_at + 15
    while not (cache.breaker_state is BreakerState.CLOSED and cache.snapshot().master == replica.address):
        assert time.monotonic() < deadline, f"no failover within 15 s: {cache.snapshot()}"
        await sell()
        await asyncio.sleep(0.02)
    failover_seconds = time.monotonic() - killed_at
    log.info("writes on the promoted replica %.2f s after the kill", failover_seconds)

    await cache.set("after-failover", "on the new master")
    limiter = RateLimiter(cache)
    assert (await limiter.hit("5/minute", "login:account", "alice")).remaining == 4
    await limiter.close()
    for _ in range(20):
        await sell()

    assert failures == []
    assert written > 20
    stats = cache.snapshot()
    assert stats.failovers == 1
    assert stats.breaker_openings >= 1
    assert stats.mode == "redis"
    promoted = direct_client(replica.port)
    try:
        assert (await promoted.info("replication"))["role"] == "master"
        assert await promoted.get(f"{namespace}:after-failover") == "on the new master"
        assert await promoted.get(f"{namespace}:sale:{written - 1}") == "paid"
        assert [key async for key in promoted.scan_iter(match=f"{namespace}:limits:*")] != []
    finally:
        await promoted.aclose()
