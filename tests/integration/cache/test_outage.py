"""A Redis that dies, hangs and comes back, under a register that keeps selling."""

from __future__ import annotations

import logging
import time
from typing import Any

import purgatory.domain.model
import pytest

from posomni.cache.breaker import BreakerState
from tests.integration.cache.conftest import MakeCache
from tests.integration.cache.servers import Servers, direct_client, wait_for

log = logging.getLogger(__name__)
pytestmark = pytest.mark.redis


async def test_killing_redis_mid_sale_opens_the_breaker_within_a_second_and_nothing_raises(
    servers: Servers, make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await servers.redis()
    # No probe during the test, so any connection asked for while open would be a caller's.
    cache = make_cache(port=server.port, probe_interval=30)
    await cache.start()
    assert cache.client is not None
    pool = cache.client.connection_pool
    connections_asked: list[float] = []
    get_connection = pool.get_connection

    async def counting_get_connection(*args: Any, **kwargs: Any) -> Any:
        connections_asked.append(time.monotonic())
        return await get_connection(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counting_get_connection)

    killed_at = opened_at = None
    for sale in range(200):
        if sale == 50:
            await server.kill()
            killed_at = time.monotonic()
        await cache.set(f"sale:{sale}", str(sale), ttl_seconds=60)
        # Readable whether it went to Redis or to memory.
        assert await cache.get(f"sale:{sale}") == str(sale)
        if killed_at is not None and opened_at is None and cache.breaker_state is BreakerState.OPEN:
            opened_at = time.monotonic()

    assert killed_at is not None
    assert opened_at is not None, "the breaker never opened"
    log.info("breaker opened %.4f s after the kill", opened_at - killed_at)
    assert opened_at - killed_at < 1.0
    assert [t for t in connections_asked if t > opened_at] == [], "a call went to the network while open"
    assert cache.mode == "memory"
    assert cache.errors == 3


async def test_restarted_redis_is_used_again_within_seconds(
    servers: Servers, make_cache: MakeCache, namespace: str
) -> None:
    server = await servers.redis()
    cache = make_cache(port=server.port, probe_interval=0.5)
    await cache.start()
    await cache.set("before", "1")
    await server.kill()
    for sale in range(5):
        await cache.set(f"during:{sale}", "x")
    assert cache.breaker_state is BreakerState.OPEN

    await server.start()  # same port, empty
    recovered_in = await wait_for(lambda: cache.breaker_state is BreakerState.CLOSED, 5, "back on Redis")
    log.info("back on Redis %.3f s after the restart", recovered_in)
    assert recovered_in < 3
    assert cache.mode == "redis"
    assert await cache.get("during:0") is None  # outage-only copies are dropped, not served as current
    await cache.set("after", "2")
    direct = direct_client(server.port)
    try:
        assert await direct.get(f"{namespace}:after") == "2"
    finally:
        await direct.aclose()
    report = await cache.ping()
    assert report["status"] == "ok"
    assert report["breaker_openings"] == 1
    assert report["fallback_seconds"] > 0


async def test_a_hung_redis_costs_each_caller_one_timeout_at_most_and_invalidations_survive(
    servers: Servers, make_cache: MakeCache, namespace: str
) -> None:
    server = await servers.redis()
    cache = make_cache(port=server.port, probe_interval=0.3)
    await cache.start()
    await cache.set("price:7", "1099", ttl_seconds=300)

    server.freeze()
    durations = []
    for _ in range(6):
        started = time.monotonic()
        await cache.get("price:7")
        durations.append(time.monotonic() - started)
    assert cache.breaker_state is BreakerState.OPEN
    # 0.5 s socket timeout, never retried: no caller waits for seconds, and once open no caller waits at all.
    assert max(durations) < 1.0
    assert max(durations[3:]) < 0.05

    # The price changes while Redis hangs: the register drops its cached copy.
    await cache.delete("price:7")
    assert await cache.get("price:7") is None

    server.thaw()  # Redis comes back with the old price still stored
    await wait_for(lambda: cache.breaker_state is BreakerState.CLOSED, 5, "back on Redis")
    assert await cache.get("price:7") is None
    direct = direct_client(server.port)
    try:
        assert await direct.exists(f"{namespace}:price:7") == 0  # the delete was replayed before recovery
    finally:
        await direct.aclose()


class _ClockStepsBack:
    """The wall clock as purgatory sees it, one hour behind after the breaker opened (NTP, a resumed VM)."""

    @staticmethod
    def time() -> float:
        return time.time() - 3600


async def test_a_wall_clock_stepping_back_does_not_hold_the_breaker_open(
    servers: Servers, make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await servers.redis()
    cache = make_cache(port=server.port, probe_interval=0.2)
    await cache.start()
    await server.kill()
    for sale in range(3):
        await cache.set(f"sale:{sale}", "x")
    assert cache.breaker_state is BreakerState.OPEN
    monkeypatch.setattr(purgatory.domain.model, "time", _ClockStepsBack)
    await server.start()
    await wait_for(lambda: cache.breaker_state is BreakerState.CLOSED, 3, "back on Redis despite the clock")
