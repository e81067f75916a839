"""Stock statements. Every change of a quantity is one SQL statement that does the arithmetic in the database
(a conditional UPDATE or an upsert), never a value read into Python, changed and written back: two registers
selling the last bottle at once must not both see "1 left".

All quantities are base units (bottles, cans), all costs integer cents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, literal, select, true, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.catalog.models import Product
from posomni.inventory.models import StockLevel, StockMovement, StockReservation
from posomni.kit.db import rowcount
from posomni.kit.time import utcnow
from posomni.stores.models import Store


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _level(store_id: int, product_id: int) -> Any:
    return and_(StockLevel.store_id == store_id, StockLevel.product_id == product_id)


async def store_settings(session: AsyncSession, store_id: int) -> dict[str, Any] | None:
    """None when the store does not exist."""
    row = await session.execute(select(Store.settings).where(Store.id == store_id))
    found = row.first()
    return None if found is None else dict(found[0] or {})


async def products(session: AsyncSession, ids: Iterable[int]) -> dict[int, Product]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {p.id: p for p in await session.scalars(select(Product).where(Product.id.in_(wanted)))}


async def base_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, int | None]:
    """product id → its base product id (None for a base unit), for the ids that exist."""
    rows = await session.execute(select(Product.id, Product.base_product_id).where(Product.id.in_(ids)))
    return dict(rows.all())


async def try_reserve(session: AsyncSession, store_id: int, product_id: int, units: int, *, allow: bool) -> bool:
    """reserved += units, only while on_hand − reserved ≥ units (always when the store allows negative stock)."""
    if allow:
        # Reserving beyond stock is allowed: make sure the row exists and is marked as allowed to go negative,
        # which the CHECK constraint needs when the sale is committed.
        insert = _insert(session)(StockLevel).values(
            store_id=store_id, product_id=product_id, on_hand=0, reserved=units, allow_negative=True
        )
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=[StockLevel.store_id, StockLevel.product_id],
                set_={"reserved": StockLevel.reserved + units, "allow_negative": true(), "updated_at": utcnow()},
            )
        )
        return True
    result = await session.execute(
        update(StockLevel)
        .where(_level(store_id, product_id), StockLevel.on_hand - StockLevel.reserved >= units)
        # The flag follows the store setting, except on a row already below zero, which the CHECK requires to
        # keep it until stock is back.
        .values(reserved=StockLevel.reserved + units, allow_negative=StockLevel.on_hand < 0, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def unreserve(session: AsyncSession, store_id: int, product_id: int, units: int) -> None:
    await session.execute(
        update(StockLevel)
        .where(_level(store_id, product_id))
        .values(reserved=StockLevel.reserved - units, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def take_reserved(session: AsyncSession, store_id: int, product_id: int, units: int) -> bool:
    """on_hand −= units and reserved −= units, only while that much is reserved and on_hand may take it."""
    result = await session.execute(
        update(StockLevel)
        .where(
            _level(store_id, product_id),
            StockLevel.reserved >= units,
            (StockLevel.on_hand >= units) | StockLevel.allow_negative,
        )
        .values(on_hand=StockLevel.on_hand - units, reserved=StockLevel.reserved - units, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def untake(session: AsyncSession, store_id: int, product_id: int, units: int) -> None:
    """Undo `take_reserved` within the same transaction."""
    await session.execute(
        update(StockLevel)
        .where(_level(store_id, product_id))
        .values(on_hand=StockLevel.on_hand + units, reserved=StockLevel.reserved + units, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def add_on_hand(session: AsyncSession, store_id: int, product_id: int, units: int, *, allow: bool) -> None:
    """on_hand += units (units > 0), creating the row when the product was never stocked here."""
    insert = _insert(session)(StockLevel).values(
        store_id=store_id, product_id=product_id, on_hand=units, reserved=0, allow_negative=allow
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[StockLevel.store_id, StockLevel.product_id],
            set_={"on_hand": StockLevel.on_hand + units, "updated_at": utcnow()},
        )
    )


async def remove_on_hand(session: AsyncSession, store_id: int, product_id: int, units: int, *, allow: bool) -> bool:
    """on_hand −= units (units > 0), only from stock not reserved by a completing sale (unless negative stock is
    allowed). False when there is not enough."""
    if allow:
        insert = _insert(session)(StockLevel).values(
            store_id=store_id, product_id=product_id, on_hand=-units, reserved=0, allow_negative=True
        )
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=[StockLevel.store_id, StockLevel.product_id],
                set_={"on_hand": StockLevel.on_hand - units, "allow_negative": true(), "updated_at": utcnow()},
            )
        )
        return True
    result = await session.execute(
        update(StockLevel)
        .where(_level(store_id, product_id), StockLevel.on_hand - StockLevel.reserved >= units)
        .values(on_hand=StockLevel.on_hand - units, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def apply_count(session: AsyncSession, store_id: int, product_id: int, variance: int, *, allow: bool) -> bool:
    """on_hand += variance (either sign), refused when it would leave on_hand below zero (unless allowed)."""
    if variance > 0:
        await add_on_hand(session, store_id, product_id, variance, allow=allow)
        return True
    statement = update(StockLevel).where(_level(store_id, product_id))
    if not allow:
        statement = statement.where(StockLevel.on_hand + variance >= 0)
    result = await session.execute(
        statement.values(on_hand=StockLevel.on_hand + variance, updated_at=utcnow()).execution_options(
            synchronize_session=False
        )
    )
    return rowcount(result) == 1


async def available(session: AsyncSession, store_id: int, product_ids: Sequence[int]) -> dict[int, int]:
    """on_hand − reserved per product (0 for a product never stocked here)."""
    rows = await session.execute(
        select(StockLevel.product_id, StockLevel.on_hand - StockLevel.reserved).where(
            StockLevel.store_id == store_id, StockLevel.product_id.in_(product_ids)
        )
    )
    found = dict(rows.all())
    return {pid: found.get(pid, 0) for pid in product_ids}


async def reservation(session: AsyncSession, store_id: int, reference: str, *, lock: bool) -> dict[int, int]:
    statement = (
        select(StockReservation.product_id, StockReservation.quantity)
        .where(StockReservation.store_id == store_id, StockReservation.reference == reference)
        .order_by(StockReservation.product_id)
    )
    if lock:
        statement = statement.with_for_update()
    return dict((await session.execute(statement)).all())


async def add_reservation(
    session: AsyncSession, store_id: int, reference: str, items: Sequence[tuple[int, int]]
) -> None:
    now = utcnow()
    await session.execute(
        _insert(session)(StockReservation),
        [
            {"store_id": store_id, "reference": reference, "product_id": pid, "quantity": units, "created_at": now}
            for pid, units in items
        ],
    )


async def drop_reservation(
    session: AsyncSession, store_id: int, reference: str, product_ids: Sequence[int] | None = None
) -> None:
    statement = delete(StockReservation).where(
        StockReservation.store_id == store_id, StockReservation.reference == reference
    )
    if product_ids is not None:
        statement = statement.where(StockReservation.product_id.in_(product_ids))
    await session.execute(statement.execution_options(synchronize_session=False))


async def has_movements(session: AsyncSession, store_id: int, reference: str, reason: str) -> bool:
    found = await session.scalar(
        select(StockMovement.id)
        .where(
            StockMovement.store_id == store_id,
            StockMovement.reference == reference,
            StockMovement.reason == reason,
        )
        .limit(1)
    )
    return found is not None


async def add_movements(
    session: AsyncSession,
    store_id: int,
    items: Sequence[tuple[int, int]],
    *,
    reason: str,
    reference: str,
    actor_id: int | None,
    note: str = "",
) -> list[int]:
    """One movement per (product id, signed base units); returns their ids in the same order."""
    if not items:
        return []
    now = utcnow()
    rows = [
        {
            "store_id": store_id,
            "product_id": pid,
            "quantity": units,
            "reason": reason,
            "reference": reference,
            "note": note,
            "actor_id": actor_id,
            "created_at": now,
        }
        for pid, units in items
    ]
    result = await session.scalars(
        _insert(session)(StockMovement).returning(StockMovement.id, sort_by_parameter_order=True), rows
    )
    return list(result)


async def ledger_mismatches(session: AsyncSession, store_id: int) -> list[tuple[int, int, int]]:
    """(product id, on_hand, sum of movements) wherever the two differ, in product id order."""
    ledger = (
        select(StockMovement.product_id, func.sum(StockMovement.quantity).label("total"))
        .where(StockMovement.store_id == store_id)
        .group_by(StockMovement.product_id)
        .subquery()
    )
    total = func.coalesce(ledger.c.total, 0)
    with_level = (
        select(StockLevel.product_id, StockLevel.on_hand, total)
        .select_from(StockLevel)
        .outerjoin(ledger, ledger.c.product_id == StockLevel.product_id)
        .where(StockLevel.store_id == store_id, StockLevel.on_hand != total)
    )
    # Movements of a product that has no stock row at all.
    without_level = (
        select(ledger.c.product_id, literal(0), ledger.c.total)
        .select_from(ledger)
        .outerjoin(StockLevel, and_(StockLevel.product_id == ledger.c.product_id, StockLevel.store_id == store_id))
        .where(StockLevel.product_id.is_(None), ledger.c.total != 0)
    )
    combined = union_all(with_level, without_level).subquery()
    rows = await session.execute(select(combined).order_by(combined.c[0]))
    return [(int(pid), int(on_hand), int(total)) for pid, on_hand, total in rows]


async def set_allow_negative(session: AsyncSession, store_id: int, allowed: bool) -> list[int]:
    """Bring every stock row of the store in step with its setting; returns the products left flagged because
    they are below zero (the CHECK constraint needs the flag until they are counted back to zero or more)."""
    if allowed:
        await session.execute(
            update(StockLevel)
            .where(StockLevel.store_id == store_id, StockLevel.allow_negative.is_(False))
            .values(allow_negative=True)
            .execution_options(synchronize_session=False)
        )
        return []
    await session.execute(
        update(StockLevel)
        .where(StockLevel.store_id == store_id, StockLevel.allow_negative.is_(True), StockLevel.on_hand >= 0)
        .values(allow_negative=False)
        .execution_options(synchronize_session=False)
    )
    negative = await session.scalars(
        select(StockLevel.product_id)
        .where(StockLevel.store_id == store_id, StockLevel.on_hand < 0)
        .order_by(StockLevel.product_id)
    )
    return list(negative)
