"""The database itself keeps the data model's rules, on PostgreSQL and on SQLite: check constraints, foreign keys,
timezone-aware timestamps, and SQLite's WAL mode and busy timeout. (Autogenerate does not compare check
constraints, so the migration-drift test alone cannot show they exist.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from posomni.catalog.models import Product
from posomni.customers.models import Customer
from posomni.database import SQLITE_BUSY_TIMEOUT_MS, Database
from posomni.inventory.models import StockLevel
from posomni.stores.models import Store
from tests.support import seed_demo


async def _ids(database: Database) -> tuple[int, int]:
    async with database.sessionmaker() as session:
        store_id = await session.scalar(select(Store.id))
        product_id = await session.scalar(select(StockLevel.product_id).where(StockLevel.store_id == store_id))
    assert store_id is not None
    assert product_id is not None
    return store_id, product_id


async def _refused(database: Database, statement: str, **params: object) -> None:
    with pytest.raises(IntegrityError):
        async with database.unit_of_work() as session:
            await session.execute(text(statement), params)


@pytest.fixture
async def seeded(database: Database) -> Database:
    await seed_demo(database)
    return database


async def test_money_may_not_be_negative(seeded: Database) -> None:
    _, product_id = await _ids(seeded)
    await _refused(seeded, "UPDATE products SET price_cents = -1 WHERE id = :id", id=product_id)
    await _refused(seeded, "UPDATE products SET cost_cents = -5 WHERE id = :id", id=product_id)
    with pytest.raises(IntegrityError):
        async with seeded.unit_of_work() as session:
            session.add(Customer(name="Negative", loyalty_points=-1))
    async with seeded.sessionmaker() as session:
        product = await session.get(Product, product_id)
    assert product is not None
    assert product.price_cents > 0


async def test_stock_may_not_go_negative_unless_the_store_allows_it(seeded: Database) -> None:
    store_id, product_id = await _ids(seeded)
    where = "WHERE store_id = :store AND product_id = :product"
    await _refused(seeded, f"UPDATE stock_levels SET on_hand = -1 {where}", store=store_id, product=product_id)
    await _refused(seeded, f"UPDATE stock_levels SET reserved = -1 {where}", store=store_id, product=product_id)
    async with seeded.unit_of_work() as session:
        await session.execute(
            text(f"UPDATE stock_levels SET allow_negative = :yes, on_hand = -2 {where}"),
            {"yes": True, "store": store_id, "product": product_id},
        )
    async with seeded.sessionmaker() as session:
        level = await session.get(StockLevel, (store_id, product_id))
    assert level is not None
    assert level.on_hand == -2


async def test_foreign_keys_are_enforced(seeded: Database) -> None:
    _, product_id = await _ids(seeded)
    await _refused(seeded, "UPDATE stock_levels SET store_id = 999999 WHERE product_id = :id", id=product_id)
    await _refused(seeded, "DELETE FROM products WHERE id = :id", id=product_id)  # stock and movements point at it


async def test_timestamps_come_back_timezone_aware_in_utc(seeded: Database) -> None:
    async with seeded.sessionmaker() as session:
        product = await session.scalar(select(Product))
    assert product is not None
    assert product.created_at.tzinfo is not None
    assert product.created_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - product.created_at).total_seconds()) < 3600


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        async with database.engine.connect() as connection:
            mode = await connection.scalar(text("PRAGMA journal_mode"))
            timeout = await connection.scalar(text("PRAGMA busy_timeout"))
            foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
    finally:
        await database.dispose()
    assert str(mode).lower() == "wal"
    assert timeout == SQLITE_BUSY_TIMEOUT_MS
    assert foreign_keys == 1
