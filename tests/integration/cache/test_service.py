"""The cache service on a real Redis, without Redis at all, and the numbers it publishes."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from prometheus_client import generate_latest
from prometheus_client.registry import REGISTRY, CollectorRegistry

from posomni.cache.breaker import BreakerState
from posomni.cache.service import CacheService
from tests.conftest import command_calls
from tests.integration.cache.conftest import MakeCache
from tests.integration.cache.servers import Servers


async def test_values_live_in_redis_under_the_namespace(
    shared_cache: CacheService, redis_client: aioredis.Redis, namespace: str
) -> None:
    assert await shared_cache.set("product:42", "Malbec 750ml", ttl_seconds=30) is True
    assert await redis_client.get(f"{namespace}:product:42") == "Malbec 750ml"
    assert 29_000 < await redis_client.pttl(f"{namespace}:product:42") <= 30_000
    assert await shared_cache.get("product:42") == "Malbec 750ml"
    assert await shared_cache.exists("product:42")
    assert shared_cache.mode == "redis"


async def test_delete_removes_every_key_and_counts_them(shared_cache: CacheService) -> None:
    await shared_cache.set("a", "1")
    await shared_cache.set("b", "2")
    assert await shared_cache.delete("a", "b", "never-set") == 2
    assert await shared_cache.get("a") is None
    assert not await shared_cache.exists("b")
    assert await shared_cache.delete() == 0


async def test_incr_sets_the_ttl_once_when_the_counter_is_created(
    shared_cache: CacheService, redis_client: aioredis.Redis, namespace: str
) -> None:
    assert await shared_cache.incr("attempts", ttl_seconds=60) == 1
    await redis_client.pexpire(f"{namespace}:attempts", 5_000)
    assert await shared_cache.incr("attempts", ttl_seconds=60) == 2
    assert await redis_client.pttl(f"{namespace}:attempts") <= 5_000  # not pushed back by the second hit
    assert await shared_cache.incr("no-ttl") == 1
    assert await redis_client.pttl(f"{namespace}:no-ttl") == -1


async def test_get_many_reads_several_keys_in_one_command_in_the_order_asked(
    shared_cache: CacheService, redis_client: aioredis.Redis
) -> None:
    await shared_cache.set("a", "1")
    await shared_cache.set("c", "3")
    gets, mgets = await command_calls(redis_client, "get"), await command_calls(redis_client, "mget")

    assert await shared_cache.get_many("c", "b", "a") == ["3", None, "1"]

    assert await command_calls(redis_client, "mget") == mgets + 1
    assert await command_calls(redis_client, "get") == gets
    report = await shared_cache.ping()
    assert (report["hits"], report["misses"]) == (2, 1)


async def test_get_many_without_redis_reads_memory(make_cache: MakeCache) -> None:
    cache = make_cache()
    await cache.start()
    await cache.set("a", "1")
    assert await cache.get_many("a", "b") == ["1", None]


async def test_set_if_absent_stores_only_the_first_value(shared_cache: CacheService) -> None:
    assert await shared_cache.set_if_absent("sale:lock", "register-1", ttl_seconds=10) is True
    assert await shared_cache.set_if_absent("sale:lock", "register-2", ttl_seconds=10) is False
    assert await shared_cache.get("sale:lock") == "register-1"


async def test_values_expire(shared_cache: CacheService) -> None:
    await shared_cache.set("short", "x", ttl_seconds=0.05)
    await asyncio.sleep(0.15)
    assert await shared_cache.get("short") is None


async def test_a_ttl_of_zero_is_refused(shared_cache: CacheService) -> None:
    with pytest.raises(ValueError, match="positive"):
        await shared_cache.set("k", "v", ttl_seconds=0)


async def test_a_wrong_type_is_a_bug_raised_to_the_caller_not_an_outage(shared_cache: CacheService) -> None:
    await shared_cache.set("name", "not a number")
    with pytest.raises(aioredis.ResponseError):
        await shared_cache.incr("name")
    assert shared_cache.breaker_state is BreakerState.CLOSED
    assert shared_cache.errors == 1


async def test_ping_reports_redis_and_its_numbers(shared_cache: CacheService, redis_client: aioredis.Redis) -> None:
    await shared_cache.get("missing")
    report = await shared_cache.ping()
    kwargs = redis_client.connection_pool.connection_kwargs
    assert report["status"] == "ok"
    assert report["mode"] == "redis"
    assert report["topology"] == "standalone"
    assert report["breaker"] == "closed"
    assert report["master"] == f"{kwargs['host']}:{kwargs['port']}"
    assert report["misses"] == 1
    assert report["fallback_active"] is False


async def test_without_redis_everything_works_in_memory(make_cache: MakeCache) -> None:
    cache = make_cache()
    await cache.start()
    assert cache.mode == "memory"
    assert cache.topology == "none"
    assert cache.breaker_state is None
    assert await cache.set("k", "v", ttl_seconds=5) is False
    assert await cache.get("k") == "v"
    assert await cache.exists("k")
    assert await cache.incr("n", ttl_seconds=5) == 1
    assert await cache.incr("n", ttl_seconds=5) == 2
    assert await cache.set_if_absent("lock", "1") is True
    assert await cache.set_if_absent("lock", "2") is False
    assert await cache.delete("k", "lock") == 2
    assert await cache.get("k") is None
    report = await cache.ping()
    assert report["status"] == "degraded"
    assert report["mode"] == "memory"
    assert report["breaker"] == "disabled"
    assert "not configured" in report["detail"]
    assert report["hits"] == 1
    assert report["misses"] == 1


async def test_metrics_count_hits_misses_errors_and_the_outage(servers: Servers, make_cache: MakeCache) -> None:
    server = await servers.redis()
    registry = CollectorRegistry()
    cache = make_cache(port=server.port, registry=registry, probe_interval=30)
    await cache.set("a", "1")
    await cache.get("a")  # hit
    await cache.get("b")  # miss
    await server.kill()
    for key in ("c", "d", "e", "f"):  # three failures open the breaker; the fourth never reaches the network
        await cache.get(key)
    await asyncio.sleep(0.05)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("posomni_redis_hits_total") == 1
    assert value("posomni_redis_misses_total") == 5
    assert value("posomni_redis_errors_total") == 3
    assert value("posomni_redis_breaker_openings_total") == 1
    assert value("posomni_redis_failovers_total") == 0
    assert (value("posomni_redis_fallback_seconds_total") or 0) >= 0.05
    assert value("posomni_redis_fallback_active") == 1
    assert value("posomni_redis_breaker_state", state="open") == 1
    assert value("posomni_redis_breaker_state", state="closed") == 0
    assert value("posomni_redis_master_info", address=server.address, topology="standalone") == 1
    report = await cache.ping()
    assert report["status"] == "degraded"
    assert report["errors"] == 3
    assert report["breaker_openings"] == 1


async def test_metrics_registration_is_idempotent_and_follows_the_newest_service(make_cache: MakeCache) -> None:
    registry = CollectorRegistry()
    first = make_cache(registry=registry)
    await first.get("x")
    second = make_cache(registry=registry)  # a second app in the same process: no "Duplicated timeseries"
    assert registry.get_sample_value("posomni_redis_misses_total") == 0
    await second.get("x")
    assert registry.get_sample_value("posomni_redis_misses_total") == 1
    assert b"posomni_redis_breaker_state" in generate_latest(registry)


async def test_services_on_the_default_registry_do_not_collide(make_cache: MakeCache) -> None:
    make_cache(registry=REGISTRY)
    make_cache(registry=REGISTRY)
    assert REGISTRY.get_sample_value("posomni_redis_fallback_active") == 1
