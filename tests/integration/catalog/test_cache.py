"""The lookup cache never serves a stale price: every change reaches the next scan, on the in-memory fallback and
on a real Redis (a namespace of the test's own)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from posomni import bootstrap
from posomni.auth.principal import Actor
from posomni.cache.service import CacheService
from posomni.catalog import lookup as catalog_lookup
from posomni.catalog import service
from posomni.catalog.schemas import ProductUpdate
from posomni.config import Settings
from posomni.database import Database
from tests.conftest import connect_redis, drop_namespace, make_settings, redis_env
from tests.integration.catalog.helpers import product_id
from tests.support import running_app, seed_demo, sign_in

TITO = "081234000011"
TITO_KEY = "catalog:gtin:00081234000011"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache_settings(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Settings, Redis | None, str]]:
    namespace = f"posomni-test-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path)), None, namespace
        return
    client = await connect_redis(decode_responses=True)
    settings = make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), **redis_env(client, namespace))
    try:
        yield settings, client, namespace
    finally:
        await drop_namespace(client, namespace)
        await client.aclose()


async def test_a_price_change_reaches_the_next_scan(
    cache_settings: tuple[Settings, Redis | None, str], database: Database
) -> None:
    settings, redis, namespace = cache_settings
    await seed_demo(database)
    async with running_app(settings, database) as (app, http):
        cache: CacheService = app.state.cache
        assert cache.mode == ("memory" if redis is None else "redis")
        manager = await sign_in(http, "manager")
        assert (await http.get(f"/catalog/lookup/{TITO}", headers=manager)).json()["price_cents"] == 2199
        # The scan was cached (in Redis itself when Redis is there) ...
        assert await cache.get(TITO_KEY) is not None
        if redis is not None:
            assert await redis.get(f"{namespace}:{TITO_KEY}") is not None
        assert (await http.get(f"/catalog/lookup/{TITO}", headers=manager)).json()["price_cents"] == 2199
        tito = await product_id(database, "VOD-TITO-750")
        changed = await http.patch(f"/catalog/products/{tito}", headers=manager, json={"price_cents": 2399})
        assert changed.status_code == 200
        # ... and the change removed it: the next scan has the new price.
        assert (await http.get(f"/catalog/lookup/{TITO}", headers=manager)).json()["price_cents"] == 2399
        if redis is not None:
            assert await redis.get(f"{namespace}:{TITO_KEY}") is not None


async def test_barcode_moves_and_deactivation_reach_the_next_scan(
    cache_settings: tuple[Settings, Redis | None, str], database: Database
) -> None:
    settings, _, _ = cache_settings
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        manager = await sign_in(http, "manager")
        tito, grey = await product_id(database, "VOD-TITO-750"), await product_id(database, "VOD-GREY-750")
        assert (await http.get(f"/catalog/lookup/{TITO}", headers=manager)).json()["id"] == tito
        removed = await http.delete(f"/catalog/products/{tito}/barcodes/{TITO}", headers=manager)
        assert removed.status_code == 200
        assert removed.json()["barcodes"] == []
        gone = await http.get(f"/catalog/lookup/{TITO}", headers=manager)
        assert gone.json()["error"]["code"] == "unknown_barcode"
        added = await http.post(f"/catalog/products/{grey}/barcodes", headers=manager, json={"code": TITO})
        assert added.status_code == 201
        assert (await http.get(f"/catalog/lookup/{TITO}", headers=manager)).json()["id"] == grey
        await http.patch(f"/catalog/products/{grey}", headers=manager, json={"is_active": False, "name": "Goose"})
        scanned = (await http.get(f"/catalog/lookup/{TITO}", headers=manager)).json()
        assert (scanned["is_active"], scanned["name"]) == (False, "Goose")


async def test_a_scan_during_a_price_change_is_not_cached(pg_url: str) -> None:
    """The writer's UPDATE holds the row; a scan meanwhile gets the committed price and must not cache it, or
    the writer's invalidation (already done) would be undone by the reader."""
    database = Database(pg_url)
    try:
        await seed_demo(database)
        tito = await product_id(database, "VOD-TITO-750")
        cache = CacheService(None, registry=None)
        crypto = bootstrap.encryption(make_settings(DATABASE_URL=pg_url))
        writer_done = asyncio.Event()
        updated = asyncio.Event()

        async def writer() -> None:
            async with database.unit_of_work() as session:
                await service.update_product(
                    session, cache, crypto, Actor.system("test"), tito, ProductUpdate(price_cents=2599),
                    may_change_price=True,
                )  # fmt: skip
                updated.set()
                await writer_done.wait()

        task = asyncio.create_task(writer())
        await updated.wait()
        async with database.unit_of_work() as session:
            during = await catalog_lookup.lookup(session, cache, TITO)
        assert during.price_cents == 2199
        assert await cache.get(TITO_KEY) is None
        writer_done.set()
        await task
        async with database.unit_of_work() as session:
            after = await catalog_lookup.lookup(session, cache, TITO)
        assert after.price_cents == 2599
        assert await cache.get(TITO_KEY) is not None
    finally:
        await database.dispose()
