"""Revocation with real Redis: shared by every app process, and still in force after Redis loses its data."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis.asyncio as aioredis

from posomni.database import Database
from tests.conftest import drop_namespace, make_settings, redis_env
from tests.support import running_app, seed_demo, sign_in


async def test_logout_in_one_process_is_refused_in_another(
    db_url: str, tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), **redis_env(redis_client, namespace))
    first_db, second_db = Database(db_url), Database(db_url)
    await seed_demo(first_db)
    try:
        async with running_app(settings, first_db) as (first, http_a), running_app(settings, second_db) as (_, http_b):
            assert first.state.cache.mode == "redis"
            headers = await sign_in(http_a, "cashier")
            assert (await http_b.get("/auth/me", headers=headers)).status_code == 200
            assert (await http_a.post("/auth/logout", headers=headers)).status_code == 204
            refused = await http_b.get("/auth/me", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "token_revoked"
            assert await redis_client.keys(f"{namespace}:auth:revoked:*")
    finally:
        await drop_namespace(redis_client, namespace)
        await first_db.dispose()
        await second_db.dispose()


async def test_revocation_survives_redis_losing_its_data(
    db_url: str, tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), **redis_env(redis_client, namespace))
    database = Database(db_url)
    await seed_demo(database)
    try:
        async with running_app(settings, database) as (_, http):
            headers = await sign_in(http, "cashier")
            assert (await http.post("/auth/logout", headers=headers)).status_code == 204
            # Redis here keeps nothing on disk: a restart empties it. The database is the record.
            await drop_namespace(redis_client, namespace)
            refused = await http.get("/auth/me", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "token_revoked"
            # And the revocation is back in Redis for the next request's fast path.
            assert await redis_client.exists(f"{namespace}:auth:revocations-loaded")
    finally:
        await drop_namespace(redis_client, namespace)
        await database.dispose()


async def test_revocation_with_the_in_memory_fallback(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path))
    first_db, second_db = Database(db_url), Database(db_url)
    await seed_demo(first_db)
    try:
        async with running_app(settings, first_db) as (first, http_a), running_app(settings, second_db) as (_, http_b):
            assert first.state.cache.mode == "memory"
            headers = await sign_in(http_a, "manager")
            assert (await http_a.post("/auth/logout", headers=headers)).status_code == 204
            # Two processes with separate memories: the second learns it from the database.
            assert (await http_a.get("/auth/me", headers=headers)).status_code == 401
            assert (await http_b.get("/auth/me", headers=headers)).status_code == 401
    finally:
        await first_db.dispose()
        await second_db.dispose()
