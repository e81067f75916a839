"""A sale at the register, from the first scan to the moment it is handed to the checkout saga.

The sale lives on the server: a register that crashes or reloads resumes it. Every change re-prices the whole
sale with the pricing engine (promotions, manager discounts, deposits, tax), so the totals on the screen are
always the ones that will be charged.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from posomni.audit import service as audit
from posomni.auth.principal import Actor, Principal
from posomni.cache.service import CacheService
from posomni.catalog import lookup as catalog
from posomni.catalog.models import Product
from posomni.catalog.promotions import pricing_context
from posomni.customers import service as customers
from posomni.kit.errors import ValidationFailed
from posomni.kit.time import local_date, utcnow
from posomni.outbox import service as outbox
from posomni.sales.errors import EmptySale, LineNotFound, ProductInactive, SaleNotFound, SaleNotOpen
from posomni.sales.models import Sale, SaleLine, SaleStatus, StoreCounter
from posomni.sales.pricing import AmountOff, PercentOff, SaleInput, SaleLineInput, UnknownTaxClass, price_sale
from posomni.security.crypto import EncryptionService
from posomni.shifts import service as shifts
from posomni.stores.models import Register, Store

MAX_QUANTITY = 999


async def load(session: AsyncSession, sale_id: int, store_id: int | None, *, lock: bool = False) -> Sale:
    """The sale with its lines, in one statement (a join); `lock` locks the sale's row (not its lines')."""
    query = select(Sale).where(Sale.id == sale_id).options(joinedload(Sale.lines))
    if lock:
        query = query.with_for_update(of=Sale)
    result = await session.scalars(query.execution_options(populate_existing=True))
    sale = result.unique().one_or_none()
    if sale is None or (store_id is not None and sale.store_id != store_id):
        raise SaleNotFound(details={"sale_id": sale_id})
    return sale


async def by_receipt(session: AsyncSession, receipt_number: str, store_id: int | None) -> Sale:
    sale = await session.scalar(
        select(Sale).where(Sale.receipt_number == receipt_number.strip()).options(selectinload(Sale.lines))
    )
    if sale is None or (store_id is not None and sale.store_id != store_id):
        raise SaleNotFound("No sale with that receipt number.", details={"receipt_number": receipt_number})
    return sale


def require_open(sale: Sale) -> None:
    if sale.status != SaleStatus.OPEN.value:
        raise SaleNotOpen(details={"status": sale.status})


async def next_number(session: AsyncSession, store_id: int, name: str) -> int:
    """The next value of a per-store counter, in one statement (an upsert that increments). The row lock lasts
    until the caller's transaction ends: call it as late as possible."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(StoreCounter)
        .values(store_id=store_id, name=name, value=1)
        .on_conflict_do_update(
            index_elements=[StoreCounter.store_id, StoreCounter.name], set_={"value": StoreCounter.value + 1}
        )
        .returning(StoreCounter.value)
    )
    value = await session.scalar(statement)
    assert value is not None
    return int(value)


def receipt_number(store: Store, number: int) -> str:
    return f"{store.code}-{number:08d}"


async def open_sale(session: AsyncSession, principal: Principal, register_id: int | None) -> Sale:
    register_ref = register_id or principal.register_id
    if register_ref is None:
        raise ValidationFailed("Which register? Sign in at a register or pass register_id.")
    register = await shifts.register_in_store(session, register_ref, principal.store_id)
    shift = await shifts.require_open_shift(session, register.id)
    store = await session.get(Store, register.store_id)
    assert store is not None
    sale = Sale(
        store_id=store.id,
        register_id=register.id,
        shift_id=shift.id,
        cashier_id=principal.user_id,
        receipt_number=receipt_number(store, await next_number(session, store.id, "receipt")),
        business_date=local_date(store.timezone),
    )
    session.add(sale)
    await session.flush()
    # A new sale has no lines: mark the collection loaded instead of letting it be fetched.
    set_committed_value(sale, "lines", [])
    return sale


async def current_sale(session: AsyncSession, register_id: int, store_id: int | None) -> Sale | None:
    """The register's sale in progress (after a reload or a crash, the register picks it up again)."""
    await shifts.register_in_store(session, register_id, store_id)
    return await session.scalar(
        select(Sale)
        .where(Sale.register_id == register_id, Sale.status.in_([SaleStatus.OPEN.value, SaleStatus.COMPLETING.value]))
        .order_by(Sale.id.desc())
        .limit(1)
        .options(selectinload(Sale.lines))
    )


async def _store(session: AsyncSession, store_id: int) -> Store:
    store = await session.get(Store, store_id)
    assert store is not None
    return store


def _line(sale: Sale, line_id: int) -> SaleLine:
    for line in sale.lines:
        if line.id == line_id:
            return line
    raise LineNotFound(details={"line_id": line_id})


async def add_item(
    session: AsyncSession,
    cache: CacheService,
    sale: Sale,
    *,
    code: str | None = None,
    product_id: int | None = None,
    quantity: int = 1,
) -> SaleLine:
    require_open(sale)
    if code is not None:
        view = await catalog.lookup(session, cache, code)
    elif product_id is not None:
        view = await catalog.view_by_id(session, product_id)
    else:
        raise ValidationFailed("Scan a barcode or choose a product.")
    if not view.is_active:
        raise ProductInactive(details={"product_id": view.id})
    # Scanning the same item again adds to its line, unless that line was priced or discounted by hand.
    for line in sale.lines:
        if (
            line.product_id == view.id
            and line.override_price_cents is None
            and line.manual_discount_cents is None
            and line.manual_discount_percent is None
        ):
            if line.quantity + quantity > MAX_QUANTITY:
                raise ValidationFailed(f"At most {MAX_QUANTITY} of one item per line.")
            line.quantity += quantity
            await reprice(session, sale)
            return line
    line = SaleLine(
        sale_id=sale.id,
        line_no=max((existing.line_no for existing in sale.lines), default=0) + 1,
        product_id=view.id,
        stock_product_id=view.stock_product_id,
        gtin=view.gtin,
        description=view.description,
        quantity=quantity,
        units_per_pack=view.units_per_pack,
        unit_price_cents=view.price_cents,
        tax_class=view.tax_class,
        age_restricted=view.age_restricted,
        min_age=view.min_age,
    )
    session.add(line)
    sale.lines.append(line)
    # Written by the reprice's flush, priced: one INSERT, no UPDATE of the amounts just after it.
    await reprice(session, sale)
    return line


async def set_quantity(session: AsyncSession, sale: Sale, line_id: int, quantity: int) -> None:
    require_open(sale)
    _line(sale, line_id).quantity = quantity
    await reprice(session, sale)


async def remove_line(session: AsyncSession, crypto: EncryptionService, actor: Actor, sale: Sale, line_id: int) -> None:
    """Line void before tender: the line goes, and the void is audited."""
    require_open(sale)
    line = _line(sale, line_id)
    sale.lines.remove(line)
    await session.delete(line)
    await session.flush()
    await audit.record(
        session, crypto, actor, "sale.line_voided", store_id=sale.store_id, target_type="sale", target_id=sale.id,
        details={"line_no": line.line_no, "product_id": line.product_id, "quantity": line.quantity,
                 "unit_price_cents": line.unit_price_cents},
    )  # fmt: skip
    await reprice(session, sale)


async def override_price(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    sale: Sale,
    line_id: int,
    *,
    price_cents: int,
    reason: str,
    manager_id: int,
) -> None:
    require_open(sale)
    line = _line(sale, line_id)
    before = line.override_price_cents if line.override_price_cents is not None else line.unit_price_cents
    line.override_price_cents = price_cents
    line.approved_by = manager_id
    await audit.record(
        session, crypto, actor, "sale.price_override", store_id=sale.store_id, target_type="sale",
        target_id=sale.id,
        details={"line_no": line.line_no, "product_id": line.product_id, "before_cents": before,
                 "after_cents": price_cents, "reason": reason, "manager_id": manager_id},
    )  # fmt: skip
    await reprice(session, sale)


async def discount(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    sale: Sale,
    *,
    line_id: int | None,
    amount_cents: int | None,
    percent: Decimal | None,
    reason: str,
    manager_id: int,
) -> None:
    """A manager's discount on one line, or on the whole sale (`line_id` None). Clearing: both values None."""
    require_open(sale)
    if amount_cents is not None and percent is not None:
        raise ValidationFailed("Give an amount or a percentage, not both.")
    target: Sale | SaleLine = sale if line_id is None else _line(sale, line_id)
    target.manual_discount_cents = amount_cents
    target.manual_discount_percent = percent
    if isinstance(target, SaleLine):
        target.approved_by = manager_id
    else:
        target.discount_approved_by = manager_id
    await audit.record(
        session, crypto, actor, "sale.discount", store_id=sale.store_id, target_type="sale", target_id=sale.id,
        details={"line_id": line_id, "amount_cents": amount_cents, "percent": str(percent) if percent else None,
                 "reason": reason, "manager_id": manager_id},
    )  # fmt: skip
    await reprice(session, sale)


async def set_customer(session: AsyncSession, sale: Sale, customer_id: int | None) -> None:
    require_open(sale)
    if customer_id is not None:
        await customers.get(session, customer_id)
    sale.customer_id = customer_id


async def suspend(session: AsyncSession, sale: Sale) -> None:
    require_open(sale)
    if not sale.lines:
        raise EmptySale("An empty sale needs no suspending; just start a new one.")
    sale.status = SaleStatus.SUSPENDED.value


async def resume(session: AsyncSession, sale: Sale, principal: Principal) -> None:
    if sale.status != SaleStatus.SUSPENDED.value:
        raise SaleNotOpen("Only a suspended sale can be resumed.", details={"status": sale.status})
    # Resumed at this register, in its current shift: the suspended sale may have been started elsewhere.
    register_id = principal.register_id or sale.register_id
    shift = await shifts.require_open_shift(session, register_id)
    sale.register_id = register_id
    sale.shift_id = shift.id
    sale.status = SaleStatus.OPEN.value
    sale.failure_code = None
    sale.failure_message = None
    # Prices are taken again at resume time: the suspended sale may be from yesterday.
    await reprice(session, sale)


async def cancel(session: AsyncSession, crypto: EncryptionService, actor: Actor, sale: Sale) -> None:
    if sale.status not in (SaleStatus.OPEN.value, SaleStatus.SUSPENDED.value):
        raise SaleNotOpen(details={"status": sale.status})
    sale.status = SaleStatus.CANCELLED.value
    await audit.record(
        session, crypto, actor, "sale.cancelled", store_id=sale.store_id, target_type="sale", target_id=sale.id,
        details={"lines": len(sale.lines), "total_cents": sale.total_cents},
    )  # fmt: skip


def tax_rates(store: Store) -> dict[str, Decimal]:
    standard = Decimal(store.state_tax_rate) + Decimal(store.local_tax_rate)
    rates = {"standard": standard, "exempt": Decimal(0)}
    for name, rate in (store.settings or {}).get("tax_rates", {}).items():
        rates[str(name)] = Decimal(str(rate))
    return rates


def _deposits(store: Store) -> dict[str, int]:
    return {str(k): int(v) for k, v in (store.settings or {}).get("deposits", {}).items()}


async def reprice(session: AsyncSession, sale: Sale, *, flush: bool = True) -> None:
    """Price the whole sale again and write every line's and the sale's amounts (integer cents). With `flush`
    False the new amounts are written with the caller's next flush (one UPDATE with its own changes)."""
    if not sale.lines:
        for name in ("subtotal_cents", "discount_cents", "tax_cents", "deposit_cents", "total_cents"):
            setattr(sale, name, 0)
        if flush:
            await session.flush()
        return
    store = await _store(session, sale.store_id)
    product_ids = sorted({line.product_id for line in sale.lines})
    rows = await session.execute(select(Product.id, Product.deposit_class).where(Product.id.in_(product_ids)))
    deposit_class = dict(rows.all())
    context = await pricing_context(session, sale.store_id, product_ids)
    deposits = _deposits(store)
    inputs = []
    # Lines are labelled by their position: a line just added has no id before the flush below.
    for position, line in enumerate(sale.lines):
        manual: AmountOff | PercentOff | None = None
        if line.manual_discount_cents:
            manual = AmountOff(line.manual_discount_cents)
        elif line.manual_discount_percent:
            manual = PercentOff(Decimal(line.manual_discount_percent))
        inputs.append(
            SaleLineInput(
                line_id=position,
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                tax_class=line.tax_class,
                units_per_pack=line.units_per_pack,
                deposit_per_unit_cents=deposits.get(deposit_class[line.product_id] or "", 0),
                override_price_cents=line.override_price_cents,
                manual_discount=manual,
                mix_match_groups=frozenset(context.groups.get(line.product_id, ())),
                case_deal=context.case_deals.get(line.product_id),
            )
        )
    sale_discount: AmountOff | PercentOff | None = None
    if sale.manual_discount_cents:
        sale_discount = AmountOff(sale.manual_discount_cents)
    elif sale.manual_discount_percent:
        sale_discount = PercentOff(Decimal(sale.manual_discount_percent))
    try:
        priced = price_sale(
            SaleInput(
                lines=tuple(inputs),
                tax_rates=tax_rates(store),
                promotions=tuple(context.promotions),
                sale_discount=sale_discount,
            )
        )
    except UnknownTaxClass as exc:
        await session.flush()
        exc.details["line_id"] = sale.lines[exc.details["line_id"]].id
        raise
    by_position = {p.line_id: p for p in priced.lines}
    for position, line in enumerate(sale.lines):
        result = by_position[position]
        line.promotion_discount_cents = result.promotion_discount_cents
        line.discount_cents = result.discount_cents
        line.tax_cents = result.tax_cents
        line.deposit_cents = result.deposit_cents
        line.line_total_cents = result.total_cents
    sale.subtotal_cents = priced.subtotal_cents
    sale.discount_cents = priced.discount_cents
    sale.tax_cents = priced.tax_cents
    sale.deposit_cents = priced.deposit_cents
    sale.total_cents = priced.total_cents
    sale.updated_at = utcnow()
    if flush:
        await session.flush()


def stock_items(sale: Sale) -> list[tuple[int, int]]:
    """(base product id, base units) per stocked product, in ascending product id: the lock order."""
    totals: dict[int, int] = {}
    for line in sale.lines:
        totals[line.stock_product_id] = totals.get(line.stock_product_id, 0) + line.quantity * line.units_per_pack
    return sorted(totals.items())


async def announce(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, sale: Sale, event: str, details: dict[str, Any]
) -> None:
    """Record `sale.<event>` in the audit log and queue it for the back office, in the caller's transaction, so
    neither can exist without the other or without the change itself. The back-office key is derived from the
    sale and the event: a retried finish never sends it twice."""
    await audit.record(
        session, crypto, actor, f"sale.{event}", store_id=sale.store_id, target_type="sale", target_id=sale.id,
        details=details,
    )  # fmt: skip
    await outbox.enqueue(
        session, store_id=sale.store_id, topic=f"sale.{event}", aggregate_id=str(sale.id), payload=details,
        idempotency_key=f"sale:{sale.id}:{event}", request_id=actor.request_id,
    )  # fmt: skip


def summary(sale: Sale) -> dict[str, Any]:
    """What the back office and the audit log get about a sale (no customer data)."""
    return {
        "sale_id": sale.id,
        "receipt_number": sale.receipt_number,
        "kind": sale.kind,
        "store_id": sale.store_id,
        "register_id": sale.register_id,
        "business_date": sale.business_date.isoformat(),
        "subtotal_cents": sale.subtotal_cents,
        "discount_cents": sale.discount_cents,
        "tax_cents": sale.tax_cents,
        "deposit_cents": sale.deposit_cents,
        "total_cents": sale.total_cents,
        "age_verified": sale.age_verified,
    }


async def register_of(session: AsyncSession, register_id: int) -> Register:
    register = await session.get(Register, register_id)
    assert register is not None
    return register
