"""Redis dies while the register is selling: no sale fails, the breaker opens within a second, and the app
returns to Redis when it is back (real redis-server processes on loopback)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from posomni.database import Database
from tests.conftest import make_settings
from tests.integration.cache.servers import REDIS_SERVER, Servers, wait_for
from tests.integration.sales.conftest import COKE, LIMES, Register, open_register


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed; run scripts/services.sh")
    pool = Servers(tmp_path)
    try:
        yield pool
    finally:
        await pool.stop_all()


async def _sell(register: Register) -> int:
    sale = await register.new_sale()
    await register.scan(sale["id"], COKE)
    await register.scan(sale["id"], LIMES)
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 1000}])
    return done.status_code


async def test_sales_keep_going_through_a_redis_outage(db_url: str, tmp_path: Path, servers: Servers) -> None:
    redis = await servers.redis()
    redis_settings = make_settings(
        DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis.port)
    )
    database = Database(db_url)
    try:
        async with open_register(redis_settings, database) as register:
            cache = register.app.state.cache
            assert cache.mode == "redis"
            statuses = [await _sell(register) for _ in range(3)]
            await redis.kill()
            killed_at = time.monotonic()
            statuses += [await _sell(register)]
            await wait_for(lambda: cache.mode == "memory", within=5, what="the breaker open")
            opened_after = time.monotonic() - killed_at
            statuses += [await _sell(register) for _ in range(3)]
            assert statuses == [200] * 7
            # A behavioural bound (the breaker reacts to the first failures), not a benchmark.
            assert opened_after < 1.0
            await redis.start()
            await wait_for(lambda: cache.mode == "redis", within=10, what="the cache back on Redis")
            assert await _sell(register) == 200
    finally:
        await database.dispose()
