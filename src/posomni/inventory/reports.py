"""Stock levels, movement history and the low-stock / reorder report (base units; costs in cents)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.catalog.models import Product
from posomni.inventory import repository
from posomni.inventory.errors import InvalidAdjustment, NotABaseUnit, UnknownProduct
from posomni.inventory.models import StockLevel, StockMovement
from posomni.inventory.service import negative_stock_allowed
from posomni.kit.time import utcnow
from posomni.security.crypto import EncryptionService


@dataclass(frozen=True, slots=True)
class Level:
    product_id: int
    # The base product whose stock this is (the product itself for a single).
    stock_product_id: int
    units_per_pack: int
    on_hand: int
    reserved: int
    reorder_point: int
    reorder_quantity: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def available_packs(self) -> int:
        """Whole packs of the asked-for product that the available base units make (never negative)."""
        return max(self.available, 0) // self.units_per_pack


async def level(session: AsyncSession, store_id: int, product_id: int) -> Level:
    """Stock of any product: for a pack, its base product's stock with how many whole packs that makes."""
    found = (await repository.products(session, [product_id])).get(product_id)
    if found is None:
        raise UnknownProduct(details={"product_ids": [product_id]})
    base_id = found.base_product_id or found.id
    row = await session.scalar(
        select(StockLevel)
        .where(StockLevel.store_id == store_id, StockLevel.product_id == base_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        return Level(product_id, base_id, found.units_per_pack, 0, 0, 0, 0)
    return Level(
        product_id, base_id, found.units_per_pack, row.on_hand, row.reserved, row.reorder_point, row.reorder_quantity
    )


async def set_reorder(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    store_id: int,
    product_id: int,
    *,
    reorder_point: int,
    reorder_quantity: int,
) -> Level:
    if reorder_point < 0 or reorder_quantity < 0:
        raise InvalidAdjustment("Reorder point and quantity are zero or more.")
    bases = await repository.base_of(session, [product_id])
    if product_id not in bases:
        raise UnknownProduct(details={"product_ids": [product_id]})
    if bases[product_id] is not None:
        raise NotABaseUnit(details={"product_ids": [product_id]})
    allow = await negative_stock_allowed(session, store_id)
    row = await session.get(StockLevel, (store_id, product_id), with_for_update=True, populate_existing=True)
    if row is None:
        row = StockLevel(store_id=store_id, product_id=product_id, on_hand=0, reserved=0, allow_negative=allow)
        session.add(row)
    before = {"reorder_point": row.reorder_point or 0, "reorder_quantity": row.reorder_quantity or 0}
    row.reorder_point, row.reorder_quantity, row.updated_at = reorder_point, reorder_quantity, utcnow()
    await session.flush()
    await audit.record(
        session, crypto, actor, "inventory.reorder_changed", store_id=store_id, target_type="product",
        target_id=product_id, details={"before": before,
                                       "after": {"reorder_point": reorder_point, "reorder_quantity": reorder_quantity}},
    )  # fmt: skip
    return await level(session, store_id, product_id)


@dataclass(frozen=True, slots=True)
class LowStockItem:
    product_id: int
    sku: str
    name: str
    size: str
    on_hand: int
    reserved: int
    available: int
    reorder_point: int
    reorder_quantity: int
    # Base units to order: the reorder quantity, or else enough to reach twice the reorder point.
    suggested_units: int
    # The largest pack of the product (a case) and how many of them cover the suggestion; None without packs.
    case_size: int | None
    suggested_cases: int | None
    unit_cost_cents: int


async def low_stock(session: AsyncSession, store_id: int, *, limit: int = 500) -> list[LowStockItem]:
    """Active base products whose available stock (on hand, not reserved) is at or below their reorder point,
    most urgent first (furthest below the point)."""
    case = (
        select(Product.base_product_id.label("base_id"), func.max(Product.units_per_pack).label("size"))
        .where(Product.base_product_id.is_not(None), Product.is_active.is_(True))
        .group_by(Product.base_product_id)
        .subquery()
    )
    available = StockLevel.on_hand - StockLevel.reserved
    rows = await session.execute(
        select(StockLevel, Product.sku, Product.name, Product.size, Product.cost_cents, case.c.size)
        .join(Product, Product.id == StockLevel.product_id)
        .outerjoin(case, case.c.base_id == Product.id)
        .where(
            StockLevel.store_id == store_id,
            StockLevel.reorder_point > 0,
            available <= StockLevel.reorder_point,
            Product.is_active.is_(True),
        )
        .order_by(available - StockLevel.reorder_point, Product.search_text, Product.id)
        .limit(limit)
    )
    items: list[LowStockItem] = []
    for stock, sku, name, size, cost, case_size in rows:
        free = stock.on_hand - stock.reserved
        suggested = stock.reorder_quantity if stock.reorder_quantity > 0 else 2 * stock.reorder_point - free
        suggested = max(suggested, 0)
        cases = None if not case_size else -(-suggested // case_size)
        items.append(
            LowStockItem(
                stock.product_id, sku, name, size, stock.on_hand, stock.reserved, free, stock.reorder_point,
                stock.reorder_quantity, suggested, case_size, cases, cost,
            )
        )  # fmt: skip
    return items


async def movements(session: AsyncSession, store_id: int, product_id: int, *, limit: int = 100) -> list[StockMovement]:
    return list(
        await session.scalars(
            select(StockMovement)
            .where(StockMovement.store_id == store_id, StockMovement.product_id == product_id)
            .order_by(StockMovement.created_at.desc(), StockMovement.id.desc())
            .limit(limit)
        )
    )
