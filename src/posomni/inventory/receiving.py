"""Receiving against a distributor's invoice: cases in, base units on the shelf, costs updated.

An invoice is kept with its lines for at least 3 years (Fla. Stat. 561.55(3)(b)): the app offers no way to
delete or change one; the database refuses to delete a product or store it references.

Units: `quantity` is counted in the invoiced product (usually a case); stock grows by `quantity ×
units_per_pack` base units of the base product. `cost_cents` is per invoiced unit; the cost per base unit is
that divided by `units_per_pack`, rounded half-up to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.catalog.barcodes import parse
from posomni.catalog.models import Barcode, Product
from posomni.inventory import repository
from posomni.inventory.errors import DuplicateInvoice, InvalidAdjustment, InvoiceNotFound, UnknownProduct
from posomni.inventory.models import MovementReason, PurchaseInvoice, PurchaseInvoiceLine
from posomni.inventory.service import MAX_UNITS, announce, negative_stock_allowed, normalise_items
from posomni.kit.money import round_half_up
from posomni.kit.time import utcnow
from posomni.security.crypto import EncryptionService

# The invoice total is a 32-bit column of cents: $21 million.
MAX_INVOICE_CENTS = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ReceiveLine:
    # One of the two: the product id, or a barcode scanned off the case.
    product_id: int | None
    barcode: str | None
    quantity: int
    # Cents per invoiced unit (per case); None leaves the product's cost as it is.
    cost_cents: int | None = None


async def _resolve(session: AsyncSession, lines: Sequence[ReceiveLine]) -> list[Product]:
    gtins = {i: parse(line.barcode).gtin14 for i, line in enumerate(lines) if line.product_id is None and line.barcode}
    owners: dict[str, int] = {}
    if gtins:
        rows = await session.execute(
            select(Barcode.gtin, Barcode.product_id).where(Barcode.gtin.in_(sorted(set(gtins.values()))))
        )
        owners = dict(rows.all())
    wanted: list[int | None] = []
    for i, line in enumerate(lines):
        wanted.append(line.product_id if line.product_id is not None else owners.get(gtins.get(i, "")))
    found = await repository.products(session, [pid for pid in wanted if pid is not None])
    missing = [i for i, pid in enumerate(wanted) if pid is None or pid not in found]
    if missing:
        raise UnknownProduct("Some lines name no known product.", details={"lines": missing})
    return [found[pid] for pid in wanted if pid is not None]


async def receive(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    store_id: int,
    *,
    supplier: str,
    invoice_number: str,
    lines: Sequence[ReceiveLine],
    received_at: datetime | None = None,
    note: str = "",
    update_costs: bool = True,
) -> PurchaseInvoice:
    supplier = " ".join(supplier.split())
    invoice_number = invoice_number.strip()
    if not supplier or not invoice_number:
        raise InvalidAdjustment("Supplier and invoice number are required.")
    if not lines:
        raise InvalidAdjustment("An invoice has at least one line.")
    if any(line.quantity < 1 for line in lines):
        raise InvalidAdjustment("Quantities are positive whole numbers.")
    duplicate = await session.scalar(
        select(PurchaseInvoice.id).where(
            PurchaseInvoice.supplier == supplier, PurchaseInvoice.invoice_number == invoice_number
        )
    )
    if duplicate is not None:
        raise DuplicateInvoice(details={"supplier": supplier, "invoice_number": invoice_number, "id": duplicate})
    allow = await negative_stock_allowed(session, store_id)
    products = await _resolve(session, lines)
    total = sum(line.quantity * line.cost_cents for line in lines if line.cost_cents is not None)
    too_big = [i for i, (line, p) in enumerate(zip(lines, products, strict=True))
               if line.quantity * p.units_per_pack > MAX_UNITS]  # fmt: skip
    if too_big or total > MAX_INVOICE_CENTS:
        raise InvalidAdjustment("The invoice is larger than one receipt can hold.", details={"lines": too_big})
    invoice = PurchaseInvoice(
        store_id=store_id,
        supplier=supplier,
        invoice_number=invoice_number,
        received_at=received_at or utcnow(),
        received_by=actor.user_id,
        note=note,
        total_cost_cents=total,
    )
    session.add(invoice)
    await session.flush()
    unit_costs: dict[int, tuple[int, Product, int]] = {}
    stocked: list[tuple[int, int]] = []
    for line, product in zip(lines, products, strict=True):
        base_id = product.base_product_id or product.id
        base_units = line.quantity * product.units_per_pack
        unit_cost = None
        if line.cost_cents is not None:
            # Cents per case → cents per bottle, rounded half-up once, here.
            unit_cost = round_half_up(Decimal(line.cost_cents) / product.units_per_pack)
            unit_costs[base_id] = (unit_cost, product, line.cost_cents)
        session.add(
            PurchaseInvoiceLine(
                invoice_id=invoice.id, product_id=product.id, quantity=line.quantity,
                units_per_pack=product.units_per_pack, stock_product_id=base_id, base_units=base_units,
                cost_cents=line.cost_cents, unit_cost_cents=unit_cost,
            )
        )  # fmt: skip
        stocked.append((base_id, base_units))
    items = normalise_items(stocked)
    # Stock rows first, then product rows: the order every writer here follows.
    for product_id, units in items:
        await repository.add_on_hand(session, store_id, product_id, units, allow=allow)
    reference = f"invoice:{invoice.id}"
    movement_ids = await repository.add_movements(
        session, store_id, items, reason=MovementReason.RECEIVE.value, reference=reference,
        actor_id=actor.user_id, note=f"{supplier} #{invoice_number}"[:500],
    )  # fmt: skip
    await session.flush()
    if update_costs:
        for base_id in sorted(unit_costs):
            await _update_costs(session, crypto, actor, invoice, base_id, *unit_costs[base_id])
    details = {
        "invoice_id": invoice.id,
        "supplier": supplier,
        "invoice_number": invoice_number,
        "lines": len(lines),
        "base_units": sum(units for _, units in items),
        "total_cost_cents": invoice.total_cost_cents,
    }
    await audit.record(
        session, crypto, actor, "inventory.received", store_id=store_id, target_type="purchase_invoice",
        target_id=invoice.id, details=details,
    )  # fmt: skip
    await announce(
        session, store_id, reference, movement_ids, items, reason=MovementReason.RECEIVE.value,
        reference=reference, actor=actor, extra={"supplier": supplier, "invoice_number": invoice_number},
    )  # fmt: skip
    return invoice


async def _update_costs(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    invoice: PurchaseInvoice,
    base_id: int,
    unit_cost: int,
    received: Product,
    received_cost: int,
) -> None:
    """The base unit costs `unit_cost`; the invoiced pack costs what the invoice says; every other pack of the
    base costs `unit_cost × units_per_pack`. One audit entry lists every cost that changed."""
    family = list(
        await session.scalars(
            select(Product)
            .where((Product.id == base_id) | (Product.base_product_id == base_id))
            .order_by(Product.id)
            .with_for_update()
        )
    )
    changes: list[dict[str, Any]] = []
    for product in family:
        new = received_cost if product.id == received.id else unit_cost * product.units_per_pack
        if new != product.cost_cents:
            changes.append({"product_id": product.id, "sku": product.sku, "before_cents": product.cost_cents,
                            "after_cents": new})  # fmt: skip
            product.cost_cents = new
    if changes:
        await session.flush()
        await audit.record(
            session, crypto, actor, "catalog.cost_changed", store_id=invoice.store_id, target_type="product",
            target_id=base_id, details={"invoice_id": invoice.id, "changes": changes},
        )  # fmt: skip


async def get_invoice(
    session: AsyncSession, invoice_id: int, *, scope: int | None = None
) -> tuple[PurchaseInvoice, list[PurchaseInvoiceLine]]:
    invoice = await session.get(PurchaseInvoice, invoice_id)
    if invoice is None or (scope is not None and invoice.store_id != scope):
        raise InvoiceNotFound(details={"invoice_id": invoice_id})
    lines = await session.scalars(
        select(PurchaseInvoiceLine).where(PurchaseInvoiceLine.invoice_id == invoice_id).order_by(PurchaseInvoiceLine.id)
    )
    return invoice, list(lines)


async def list_invoices(session: AsyncSession, store_id: int, *, limit: int, offset: int) -> list[PurchaseInvoice]:
    return list(
        await session.scalars(
            select(PurchaseInvoice)
            .where(PurchaseInvoice.store_id == store_id)
            .order_by(PurchaseInvoice.received_at.desc(), PurchaseInvoice.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
