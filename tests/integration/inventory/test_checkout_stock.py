"""The functions the checkout saga calls: reserve, release, commit_sale, restock — and the ledger after each."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from posomni.database import Database
from posomni.inventory import service as inventory
from posomni.inventory.errors import (
    InsufficientStock,
    NotABaseUnit,
    ReservationMismatch,
    StockNotReserved,
)
from posomni.inventory.models import StockLevel, StockMovement
from posomni.stores.models import Store
from tests.integration.catalog.helpers import assert_ledger_holds, demo_store_id, product_id, stock
from tests.support import seed_demo


@pytest.fixture
async def demo(database: Database) -> dict[str, int]:
    await seed_demo(database)
    ids = {sku: await product_id(database, sku) for sku in ("BER-BUD-1", "BER-BUD-6", "BER-BUD-24", "VOD-TITO-750")}
    return {**ids, "store": await demo_store_id(database)}


async def test_a_sale_reserves_then_commits_base_units_with_a_sale_movement(
    database: Database, demo: dict[str, int]
) -> None:
    store, bud, tito = demo["store"], demo["BER-BUD-1"], demo["VOD-TITO-750"]
    async with database.unit_of_work() as session:
        # Two 6-packs and 3 singles of Bud Light and one Tito's: 15 cans, in base units.
        items = await inventory.base_items(session, [(demo["BER-BUD-6"], 2), (bud, 3), (tito, 1)])
        assert items == sorted([(bud, 15), (tito, 1)])
        await inventory.reserve(session, store, items, reference="sale:1")
    assert await stock(database, store, bud) == (240, 15)
    await assert_ledger_holds(database, store)
    async with database.unit_of_work() as session:
        await inventory.commit_sale(session, store, items, reference="sale:1", actor_id=None)
    assert await stock(database, store, bud) == (225, 0)
    assert await stock(database, store, tito) == (23, 0)
    await assert_ledger_holds(database, store)
    async with database.sessionmaker() as session:
        columns = (StockMovement.product_id, StockMovement.quantity, StockMovement.reason)
        moved = list(await session.execute(select(*columns).where(StockMovement.reference == "sale:1")))
    assert sorted(moved) == sorted([(bud, -15, "sale"), (tito, -1, "sale")])
    # Repeating the commit (a retried saga step) changes nothing.
    async with database.unit_of_work() as session:
        await inventory.commit_sale(session, store, items, reference="sale:1", actor_id=None)
    assert await stock(database, store, bud) == (225, 0)


async def test_a_case_takes_a_whole_case_never_one_bottle(database: Database, demo: dict[str, int]) -> None:
    store, bud = demo["store"], demo["BER-BUD-1"]
    async with database.unit_of_work() as session:
        items = await inventory.base_items(session, [(demo["BER-BUD-24"], 1)])
        assert items == [(bud, 24)]
        await inventory.reserve(session, store, items, reference="sale:case")
        await inventory.commit_sale(session, store, items, reference="sale:case", actor_id=None)
        with pytest.raises(NotABaseUnit):
            await inventory.reserve(session, store, [(demo["BER-BUD-24"], 1)], reference="sale:wrong")
    assert await stock(database, store, bud) == (216, 0)
    await assert_ledger_holds(database, store)


async def test_a_short_item_refuses_the_whole_reservation_and_reserves_nothing(
    database: Database, demo: dict[str, int]
) -> None:
    store, bud, tito = demo["store"], demo["BER-BUD-1"], demo["VOD-TITO-750"]
    # The caller records the failure and commits anyway: still nothing may stay reserved.
    async with database.unit_of_work() as session:
        with pytest.raises(InsufficientStock) as refused:
            await inventory.reserve(session, store, [(bud, 6), (tito, 25)], reference="sale:2")
    assert refused.value.status_code == 409
    assert refused.value.code == "insufficient_stock"
    assert refused.value.details == {"items": [{"product_id": tito, "requested": 25, "available": 24}]}
    assert await stock(database, store, bud) == (240, 0)
    assert await stock(database, store, tito) == (24, 0)
    async with database.sessionmaker() as session:
        assert await inventory.outstanding_reservations(session, store, "sale:2") == {}


async def test_release_gives_the_reservation_back_once(database: Database, demo: dict[str, int]) -> None:
    store, tito = demo["store"], demo["VOD-TITO-750"]
    async with database.unit_of_work() as session:
        await inventory.reserve(session, store, [(tito, 20)], reference="sale:3")
        # Same reference, same items: a retried step, nothing more is held.
        await inventory.reserve(session, store, [(tito, 20)], reference="sale:3")
        with pytest.raises(ReservationMismatch):
            await inventory.reserve(session, store, [(tito, 2)], reference="sale:3")
    assert await stock(database, store, tito) == (24, 20)
    async with database.unit_of_work() as session:
        with pytest.raises(InsufficientStock):
            await inventory.reserve(session, store, [(tito, 5)], reference="sale:4")
    for _ in range(2):
        async with database.unit_of_work() as session:
            await inventory.release(session, store, [(tito, 20)], reference="sale:3")
        assert await stock(database, store, tito) == (24, 0)
    async with database.unit_of_work() as session:
        with pytest.raises(StockNotReserved):
            await inventory.commit_sale(session, store, [(tito, 20)], reference="sale:3", actor_id=None)
    await assert_ledger_holds(database, store)


async def test_restock_puts_returns_back_once_per_reference(database: Database, demo: dict[str, int]) -> None:
    store, bud = demo["store"], demo["BER-BUD-1"]
    for _ in range(2):
        async with database.unit_of_work() as session:
            await inventory.restock(session, store, [(bud, 6)], reference="return:9", actor_id=None)
    assert await stock(database, store, bud) == (246, 0)
    async with database.unit_of_work() as session:
        await inventory.restock(session, store, [(bud, 6)], reference="return:10", actor_id=None)
    assert await stock(database, store, bud) == (252, 0)
    await assert_ledger_holds(database, store)


async def test_negative_stock_only_when_the_store_allows_it(database: Database, demo: dict[str, int]) -> None:
    store, tito = demo["store"], demo["VOD-TITO-750"]
    async with database.unit_of_work() as session:
        row = await session.get(Store, store)
        assert row is not None
        row.settings = {**row.settings, "allow_negative_stock": True}
        await session.flush()
        assert await inventory.apply_negative_stock_setting(session, store) == []
        await inventory.reserve(session, store, [(tito, 30)], reference="sale:5")
        await inventory.commit_sale(session, store, [(tito, 30)], reference="sale:5", actor_id=None)
    assert await stock(database, store, tito) == (-6, 0)
    await assert_ledger_holds(database, store)
    async with database.unit_of_work() as session:
        row = await session.get(Store, store)
        assert row is not None
        row.settings = {**row.settings, "allow_negative_stock": False}
        await session.flush()
        # Tito's is below zero: it keeps the flag the database needs, but no more sales go through.
        assert await inventory.apply_negative_stock_setting(session, store) == [tito]
        with pytest.raises(InsufficientStock):
            await inventory.reserve(session, store, [(tito, 1)], reference="sale:6")
        flags = dict((await session.execute(select(StockLevel.product_id, StockLevel.allow_negative)
                                            .where(StockLevel.store_id == store))).all())  # fmt: skip
    assert flags[tito] is True
    assert not any(flag for pid, flag in flags.items() if pid != tito)
