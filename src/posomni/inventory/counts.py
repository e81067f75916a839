"""Cycle counts: start (expected quantities snapshotted), enter what is on the shelf, post the variance.

Sales go on while a count is open. A counted quantity is compared with `on_hand` *at the moment it was
entered* (`expected_at_count`), not with the snapshot: bottles sold between the start and the count are already
gone from both the shelf and `on_hand`, and are no variance. Posting adds the variance to the current `on_hand`
as one `count` movement per product, so later sales are kept too.

Every quantity is base units of base products; costs are cents per base unit (the product's cost at posting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.catalog.models import Product
from posomni.inventory import repository
from posomni.inventory.errors import (
    CountNotFound,
    CountNotOpen,
    CountOutOfDate,
    InvalidAdjustment,
    NotABaseUnit,
    UnknownProduct,
)
from posomni.inventory.models import CountStatus, MovementReason, StockCount, StockCountLine, StockLevel
from posomni.inventory.service import announce, negative_stock_allowed
from posomni.kit.time import utcnow
from posomni.security.crypto import EncryptionService


@dataclass(frozen=True, slots=True)
class CountLineReport:
    product_id: int
    sku: str
    name: str
    expected: int
    expected_at_count: int | None
    counted: int | None
    variance: int | None
    unit_cost_cents: int
    variance_cost_cents: int | None


@dataclass(frozen=True, slots=True)
class CountReport:
    id: int
    store_id: int
    status: str
    note: str
    started_at: datetime
    closed_at: datetime | None
    lines: list[CountLineReport]
    counted_lines: int
    uncounted_lines: int
    units_over: int
    units_short: int
    cost_over_cents: int
    cost_short_cents: int

    @property
    def net_units(self) -> int:
        return self.units_over - self.units_short

    @property
    def net_cost_cents(self) -> int:
        return self.cost_over_cents - self.cost_short_cents


def _check_scope(count: StockCount | None, count_id: int, scope: int | None) -> StockCount:
    # `scope`: the caller's store; another store's count is "not found", not "forbidden", so ids leak nothing.
    if count is None or (scope is not None and count.store_id != scope):
        raise CountNotFound(details={"count_id": count_id})
    return count


async def _open_count(session: AsyncSession, count_id: int, scope: int | None) -> StockCount:
    found = await session.get(StockCount, count_id, with_for_update=True, populate_existing=True)
    count = _check_scope(found, count_id, scope)
    if count.status != CountStatus.OPEN.value:
        raise CountNotOpen(details={"count_id": count_id, "status": count.status})
    return count


async def _require_base(session: AsyncSession, product_ids: Sequence[int]) -> None:
    bases = await repository.base_of(session, product_ids)
    unknown = [pid for pid in product_ids if pid not in bases]
    if unknown:
        raise UnknownProduct(details={"product_ids": unknown})
    packs = [pid for pid in product_ids if bases[pid] is not None]
    if packs:
        raise NotABaseUnit("Count singles (base units), not packs.", details={"product_ids": packs})


async def start(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    store_id: int,
    *,
    product_ids: Sequence[int] | None = None,
    category_id: int | None = None,
    note: str = "",
) -> StockCount:
    """Open a count of `product_ids`, or of a category's base products, or (neither) of every base product
    stocked in the store. More products can be added while counting."""
    await negative_stock_allowed(session, store_id)  # the store exists
    count = StockCount(store_id=store_id, status=CountStatus.OPEN.value, note=note, started_by=actor.user_id)
    session.add(count)
    await session.flush()
    level = StockLevel.__table__.alias("level")
    scope = (
        select(literal(count.id), Product.id, func.coalesce(level.c.on_hand, 0))
        .select_from(Product)
        .outerjoin(level, (level.c.product_id == Product.id) & (level.c.store_id == store_id))
        .where(Product.base_product_id.is_(None))
    )
    if product_ids is not None:
        ids = sorted(set(product_ids))
        await _require_base(session, ids)
        scope = scope.where(Product.id.in_(ids))
    elif category_id is not None:
        scope = scope.where(Product.category_id == category_id)
    else:
        scope = scope.where(level.c.product_id.is_not(None))
    await session.execute(
        insert(StockCountLine).from_select(["count_id", "product_id", "expected"], scope),
        execution_options={"synchronize_session": False},
    )
    lines = await session.scalar(select(func.count()).where(StockCountLine.count_id == count.id))
    await audit.record(
        session, crypto, actor, "inventory.count_started", store_id=store_id, target_type="stock_count",
        target_id=count.id, details={"lines": lines, "category_id": category_id, "note": note},
    )  # fmt: skip
    return count


async def enter(
    session: AsyncSession, count_id: int, entries: Sequence[tuple[int, int]], *, scope: int | None = None
) -> StockCount:
    """Record counted quantities (product id, base units counted); a later entry for a product replaces the
    earlier one. A product outside the count's scope joins it."""
    count = await _open_count(session, count_id, scope)
    counted: dict[int, int] = {}
    for product_id, quantity in entries:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise InvalidAdjustment("Counted quantities are whole numbers, zero or more.",
                                    details={"product_id": product_id})  # fmt: skip
        counted[product_id] = quantity
    ids = sorted(counted)
    await _require_base(session, ids)
    on_hand = dict(
        (
            await session.execute(
                select(StockLevel.product_id, StockLevel.on_hand).where(
                    StockLevel.store_id == count.store_id, StockLevel.product_id.in_(ids)
                )
            )
        ).all()
    )
    existing = set(
        await session.scalars(
            select(StockCountLine.product_id).where(
                StockCountLine.count_id == count.id, StockCountLine.product_id.in_(ids)
            )
        )
    )
    now = utcnow()
    for product_id in ids:
        values = {"counted": counted[product_id], "counted_at": now, "expected_at_count": on_hand.get(product_id, 0)}
        if product_id in existing:
            await session.execute(
                update(StockCountLine)
                .where(StockCountLine.count_id == count.id, StockCountLine.product_id == product_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        else:
            session.add(StockCountLine(count_id=count.id, product_id=product_id, expected=values["expected_at_count"],
                                       **values))  # fmt: skip
    await session.flush()
    return count


async def post(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, count_id: int, *, scope: int | None = None
) -> CountReport:
    """Post the variance of every counted line as `count` movements and close the count. Lines never counted
    change nothing. Refused with `CountOutOfDate` when sales since a product was counted would leave it below
    zero (the count no longer describes the shelf: recount it)."""
    count = await _open_count(session, count_id, scope)
    lines = list(
        await session.scalars(
            select(StockCountLine)
            .where(StockCountLine.count_id == count.id, StockCountLine.counted.is_not(None))
            .order_by(StockCountLine.product_id)
        )
    )
    costs = dict(
        (
            await session.execute(
                select(Product.id, Product.cost_cents).where(Product.id.in_([line.product_id for line in lines]))
            )
        ).all()
    )
    allow = await negative_stock_allowed(session, count.store_id)
    changes: list[tuple[int, int]] = []
    out_of_date: list[int] = []
    for line in lines:
        assert line.counted is not None and line.expected_at_count is not None
        line.variance = line.counted - line.expected_at_count
        line.unit_cost_cents = costs.get(line.product_id, 0)
        if line.variance == 0:
            continue
        if await repository.apply_count(session, count.store_id, line.product_id, line.variance, allow=allow):
            changes.append((line.product_id, line.variance))
        else:
            out_of_date.append(line.product_id)
    if out_of_date:
        raise CountOutOfDate(details={"product_ids": out_of_date})
    reference = f"count:{count.id}"
    movement_ids = await repository.add_movements(
        session, count.store_id, changes, reason=MovementReason.COUNT.value, reference=reference,
        actor_id=actor.user_id, note=count.note,
    )  # fmt: skip
    count.status = CountStatus.POSTED.value
    count.closed_at = utcnow()
    count.closed_by = actor.user_id
    await session.flush()
    result = await report(session, count.id)
    await audit.record(
        session, crypto, actor, "inventory.count_posted", store_id=count.store_id, target_type="stock_count",
        target_id=count.id, details={
            "counted_lines": result.counted_lines, "units_over": result.units_over,
            "units_short": result.units_short, "cost_over_cents": result.cost_over_cents,
            "cost_short_cents": result.cost_short_cents,
        },
    )  # fmt: skip
    if changes:
        await announce(
            session, count.store_id, reference, movement_ids, changes,
            reason=MovementReason.COUNT.value, reference=reference, actor=actor,
        )  # fmt: skip
    return result


async def cancel(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, count_id: int, *, scope: int | None = None
) -> StockCount:
    count = await _open_count(session, count_id, scope)
    count.status = CountStatus.CANCELLED.value
    count.closed_at = utcnow()
    count.closed_by = actor.user_id
    await session.flush()
    await audit.record(
        session, crypto, actor, "inventory.count_cancelled", store_id=count.store_id, target_type="stock_count",
        target_id=count.id, details={},
    )  # fmt: skip
    return count


async def report(
    session: AsyncSession, count_id: int, *, only_variances: bool = False, scope: int | None = None
) -> CountReport:
    """The variance report. While the count is open it previews what posting would do."""
    count = _check_scope(await session.get(StockCount, count_id, populate_existing=True), count_id, scope)
    posted = count.status == CountStatus.POSTED.value
    rows = await session.execute(
        select(StockCountLine, Product.sku, Product.name, Product.cost_cents)
        .join(Product, Product.id == StockCountLine.product_id)
        .where(StockCountLine.count_id == count.id)
        .order_by(Product.search_text, Product.id)
    )
    lines: list[CountLineReport] = []
    counted_lines = uncounted = over = short = cost_over = cost_short = 0
    for line, sku, name, current_cost in rows:
        variance: int | None = None
        if posted:
            variance = line.variance
        elif line.counted is not None and line.expected_at_count is not None:
            variance = line.counted - line.expected_at_count
        unit_cost = line.unit_cost_cents if posted and line.unit_cost_cents is not None else current_cost
        cost = None if variance is None else variance * unit_cost
        if line.counted is None:
            uncounted += 1
        else:
            counted_lines += 1
        if variance and cost is not None:
            if variance > 0:
                over, cost_over = over + variance, cost_over + cost
            else:
                short, cost_short = short - variance, cost_short - cost
        if not only_variances or variance:
            lines.append(
                CountLineReport(line.product_id, sku, name, line.expected, line.expected_at_count, line.counted,
                                variance, unit_cost, cost)
            )  # fmt: skip
    return CountReport(
        id=count.id, store_id=count.store_id, status=count.status, note=count.note, started_at=count.started_at,
        closed_at=count.closed_at, lines=lines, counted_lines=counted_lines, uncounted_lines=uncounted,
        units_over=over, units_short=short, cost_over_cents=cost_over, cost_short_cents=cost_short,
    )  # fmt: skip
