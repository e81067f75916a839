"""A sign-out during a Redis outage stays in force after Redis comes back (with its old data)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from posomni.database import Database
from tests.conftest import make_settings
from tests.integration.cache.servers import REDIS_SERVER, Servers, wait_for
from tests.support import running_app, seed_demo, sign_in


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed; run scripts/services.sh")
    pool = Servers(tmp_path)
    try:
        yield pool
    finally:
        await pool.stop_all()


async def test_sign_out_while_redis_is_frozen_is_honoured_after_it_thaws(
    db_url: str, tmp_path: Path, servers: Servers
) -> None:
    redis = await servers.redis()
    port = int(redis.address.rsplit(":", 1)[1])
    settings = make_settings(
        DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), REDIS_HOST="127.0.0.1", REDIS_PORT=str(port)
    )
    database = Database(db_url)
    await seed_demo(database)
    try:
        async with running_app(settings, database) as (app, http):
            headers = await sign_in(http, "cashier")
            assert (await http.get("/auth/me", headers=headers)).status_code == 200  # marker loaded in Redis
            # Freeze Redis (it keeps its data, as after a network blip) and sign out meanwhile.
            redis.freeze()
            cache = app.state.cache
            for _ in range(3):  # timeouts until the breaker opens
                await cache.get("probe")
            await wait_for(lambda: cache.mode == "memory", within=5, what="the breaker open")
            assert (await http.post("/auth/logout", headers=headers)).status_code == 204
            assert (await http.get("/auth/me", headers=headers)).status_code == 401
            redis.thaw()
            await wait_for(lambda: app.state.cache.mode == "redis", within=10, what="the cache back on Redis")
            # Redis still says "revocations loaded" from before, but not this one: it must not be trusted.
            assert (await http.get("/auth/me", headers=headers)).status_code == 401
    finally:
        await database.dispose()
