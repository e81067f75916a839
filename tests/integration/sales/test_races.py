"""Many registers at once on PostgreSQL: the last units are never oversold."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from posomni.catalog.models import Product
from posomni.inventory.models import StockLevel
from posomni.sales.models import Sale
from tests.integration.sales.conftest import CHIPS, Register

BUYERS = 50
LAST_UNITS = 10


async def test_fifty_buyers_of_the_last_ten_units(pg_register: Register) -> None:
    register = pg_register
    async with register.database.unit_of_work() as session:
        product_id = await session.scalar(select(Product.id).where(Product.sku == CHIPS))
        await session.execute(
            update(StockLevel)
            .where(StockLevel.product_id == product_id, StockLevel.store_id == 1)
            .values(on_hand=LAST_UNITS)
        )
    sales = []
    for _ in range(BUYERS):
        sale = await register.new_sale()
        await register.scan(sale["id"], CHIPS)
        sales.append(sale["id"])
    # Every buyer completes at the same moment; each request runs in its own transactions.
    responses = await asyncio.gather(
        *(register.complete(sale_id, [{"kind": "cash", "tendered_cents": 1000}]) for sale_id in sales)
    )
    codes = [r.status_code for r in responses]
    assert codes.count(200) == LAST_UNITS, codes
    refused = [r.json()["error"]["code"] for r in responses if r.status_code != 200]
    assert set(refused) == {"insufficient_stock"}
    assert await register.stock(CHIPS) == 0
    async with register.database.sessionmaker() as session:
        level = await session.get(StockLevel, (1, product_id))
        completed = await session.scalar(select(func.count()).select_from(Sale).where(Sale.status == "completed"))
    assert level is not None
    assert level.on_hand == 0
    assert level.reserved == 0
    assert completed == LAST_UNITS
