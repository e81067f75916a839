"""Fixtures for the cache tests: services on the shared Redis (one namespace per test, cleaned up key by key)
and on Redis processes of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client.registry import CollectorRegistry

from posomni.cache.service import CacheService
from tests.conftest import make_settings, service_missing
from tests.integration.cache.servers import HOST, MASTER_NAME, REDIS_SERVER, Servers

MakeCache = Callable[..., CacheService]


@pytest.fixture
def namespace() -> str:
    return f"posomni:test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    if REDIS_SERVER is None:
        service_missing("redis-server", FileNotFoundError("redis-server is not on PATH"))
    pool = Servers(tmp_path)
    try:
        yield pool
    finally:
        await pool.stop_all()


@pytest.fixture
async def make_cache(namespace: str) -> AsyncIterator[MakeCache]:
    """Build services from settings, as the app does; every one is closed at the end of the test."""
    created: list[CacheService] = []

    def make(
        *,
        port: int | None = None,
        sentinels: list[int] | None = None,
        probe_interval: float = 0.5,
        registry: CollectorRegistry | None = None,
        **env: str,
    ) -> CacheService:
        if port is not None:
            env.update(REDIS_HOST=HOST, REDIS_PORT=str(port))
        if sentinels is not None:
            env.update(
                REDIS_SENTINEL_ENABLED="true",
                REDIS_SENTINEL_MASTER_NAME=MASTER_NAME,
                REDIS_SENTINELS=",".join(f"{HOST}:{p}" for p in sentinels),
            )
        cache = CacheService.from_settings(
            make_settings(**env),
            namespace=namespace,
            registry=registry if registry is not None else CollectorRegistry(),
            probe_interval=probe_interval,
        )
        created.append(cache)
        return cache

    yield make
    for cache in created:
        await cache.close()


@pytest.fixture
async def shared_cache(
    redis_client: aioredis.Redis, namespace: str, make_cache: MakeCache
) -> AsyncIterator[CacheService]:
    """A service on the shared Redis; its keys are deleted afterwards (never FLUSHDB on a shared server)."""
    kwargs = redis_client.connection_pool.connection_kwargs
    cache = make_cache(
        REDIS_HOST=str(kwargs["host"]), REDIS_PORT=str(kwargs["port"]), REDIS_DB=str(kwargs.get("db", 0))
    )
    await cache.start()
    yield cache
    keys = [key async for key in redis_client.scan_iter(match=f"{namespace}:*", count=500)]
    if keys:
        await redis_client.delete(*keys)
