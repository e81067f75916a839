from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from posomni.auth.dependencies import Auth, actor, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.dependencies import DbSession
from posomni.inventory import counts, receiving, reports, service
from posomni.inventory.errors import OtherStore, StoreRequired
from posomni.inventory.models import PurchaseInvoice, PurchaseInvoiceLine
from posomni.inventory.schemas import (
    MAX_ID,
    AdjustmentIn,
    CountEntriesIn,
    CountLineOut,
    CountOut,
    CountStartIn,
    InvoiceLineOut,
    InvoiceOut,
    LedgerMismatchOut,
    LedgerOut,
    LevelOut,
    LowStockOut,
    MovementOut,
    ReceiveIn,
    ReorderIn,
    TransferIn,
    TransferOut,
)

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
router = APIRouter(prefix="/inventory", tags=["inventory"])
Reader = Annotated[Principal, Depends(require(Permission.CATALOG_READ))]
Reports = Annotated[Principal, Depends(require(Permission.REPORTS_VIEW))]
Manager = Annotated[Principal, Depends(require(Permission.STOCK_MANAGE))]
StoreQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Required when your account has no store.")]


def store_for(principal: Principal, store_id: int | None) -> int:
    """The store a request works on: the caller's own, or (accounts without one) the one asked for."""
    if principal.store_id is not None:
        if store_id is not None and store_id != principal.store_id:
            raise OtherStore(details={"store_id": store_id})
        return principal.store_id
    if store_id is None:
        raise StoreRequired()
    return store_id


def _level(level: reports.Level) -> LevelOut:
    return LevelOut(
        product_id=level.product_id, stock_product_id=level.stock_product_id, units_per_pack=level.units_per_pack,
        on_hand=level.on_hand, reserved=level.reserved, available=level.available,
        available_packs=level.available_packs, reorder_point=level.reorder_point,
        reorder_quantity=level.reorder_quantity,
    )  # fmt: skip


def _count(report: counts.CountReport) -> CountOut:
    return CountOut(
        id=report.id, store_id=report.store_id, status=report.status, note=report.note,
        started_at=report.started_at, closed_at=report.closed_at, counted_lines=report.counted_lines,
        uncounted_lines=report.uncounted_lines, units_over=report.units_over, units_short=report.units_short,
        net_units=report.net_units, cost_over_cents=report.cost_over_cents,
        cost_short_cents=report.cost_short_cents, net_cost_cents=report.net_cost_cents,
        lines=[CountLineOut(**asdict(line)) for line in report.lines],
    )  # fmt: skip


def _invoice(invoice: PurchaseInvoice, lines: list[PurchaseInvoiceLine]) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id, store_id=invoice.store_id, supplier=invoice.supplier, invoice_number=invoice.invoice_number,
        received_at=invoice.received_at, received_by=invoice.received_by, note=invoice.note,
        total_cost_cents=invoice.total_cost_cents,
        lines=[
            InvoiceLineOut(
                product_id=line.product_id, quantity=line.quantity, units_per_pack=line.units_per_pack,
                stock_product_id=line.stock_product_id, base_units=line.base_units, cost_cents=line.cost_cents,
                unit_cost_cents=line.unit_cost_cents,
            )
            for line in lines
        ],
    )  # fmt: skip


# --- levels --------------------------------------------------------------------------------------------------


@router.get("/levels/{product_id}", response_model=LevelOut)
async def get_level(product_id: PathId, session: DbSession, principal: Reader, store_id: StoreQuery = None) -> LevelOut:
    return _level(await reports.level(session, store_for(principal, store_id), product_id))


@router.put("/levels/{product_id}/reorder", response_model=LevelOut)
async def set_reorder(
    product_id: PathId, body: ReorderIn, request: Request, session: DbSession, auth: Auth, principal: Manager
) -> LevelOut:
    level = await reports.set_reorder(
        session, auth.crypto, actor(request, principal), store_for(principal, body.store_id), product_id,
        reorder_point=body.reorder_point, reorder_quantity=body.reorder_quantity,
    )  # fmt: skip
    return _level(level)


@router.get("/levels/{product_id}/movements", response_model=list[MovementOut])
async def list_movements(
    product_id: PathId,
    session: DbSession,
    principal: Reports,
    store_id: StoreQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[MovementOut]:
    rows = await reports.movements(session, store_for(principal, store_id), product_id, limit=limit)
    return [
        MovementOut(id=m.id, product_id=m.product_id, quantity=m.quantity, reason=m.reason, reference=m.reference,
                    note=m.note, actor_id=m.actor_id, created_at=m.created_at)
        for m in rows
    ]  # fmt: skip


@router.get("/low-stock", response_model=list[LowStockOut])
async def low_stock(
    session: DbSession,
    principal: Reports,
    store_id: StoreQuery = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[LowStockOut]:
    items = await reports.low_stock(session, store_for(principal, store_id), limit=limit)
    return [LowStockOut(**asdict(item)) for item in items]


@router.get("/ledger-check", response_model=LedgerOut)
async def ledger_check(session: DbSession, principal: Reports, store_id: StoreQuery = None) -> LedgerOut:
    store = store_for(principal, store_id)
    found = await service.ledger_mismatches(session, store)
    return LedgerOut(store_id=store, ok=not found, mismatches=[LedgerMismatchOut(**asdict(m)) for m in found])


# --- adjustments and transfers -------------------------------------------------------------------------------


@router.post("/adjustments", response_model=LevelOut, status_code=201)
async def adjust(body: AdjustmentIn, request: Request, session: DbSession, auth: Auth, principal: Manager) -> LevelOut:
    store = store_for(principal, body.store_id)
    await service.adjust(
        session, auth.crypto, actor(request, principal), store, product_id=body.product_id,
        quantity=body.quantity, reason=body.reason, note=body.note,
    )  # fmt: skip
    return _level(await reports.level(session, store, body.product_id))


@router.post("/transfers", response_model=TransferOut, status_code=201)
async def transfer(
    body: TransferIn, request: Request, session: DbSession, auth: Auth, principal: Manager
) -> TransferOut:
    reference = await service.transfer(
        session, auth.crypto, actor(request, principal), from_store_id=store_for(principal, body.from_store_id),
        to_store_id=body.to_store_id, items=[(line.product_id, line.quantity) for line in body.lines],
        note=body.note,
    )  # fmt: skip
    return TransferOut(reference=reference)


# --- receiving -----------------------------------------------------------------------------------------------


@router.post("/receipts", response_model=InvoiceOut, status_code=201)
async def receive(body: ReceiveIn, request: Request, session: DbSession, auth: Auth, principal: Manager) -> InvoiceOut:
    invoice = await receiving.receive(
        session, auth.crypto, actor(request, principal), store_for(principal, body.store_id),
        supplier=body.supplier, invoice_number=body.invoice_number, received_at=body.received_at, note=body.note,
        update_costs=body.update_costs,
        lines=[receiving.ReceiveLine(line.product_id, line.barcode, line.quantity, line.cost_cents)
               for line in body.lines],
    )  # fmt: skip
    return _invoice(*await receiving.get_invoice(session, invoice.id))


@router.get("/receipts", response_model=list[InvoiceOut])
async def list_receipts(
    session: DbSession,
    principal: Reports,
    store_id: StoreQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[InvoiceOut]:
    invoices = await receiving.list_invoices(session, store_for(principal, store_id), limit=limit, offset=offset)
    return [_invoice(*await receiving.get_invoice(session, invoice.id)) for invoice in invoices]


@router.get("/receipts/{invoice_id}", response_model=InvoiceOut)
async def get_receipt(invoice_id: PathId, session: DbSession, principal: Reports) -> InvoiceOut:
    return _invoice(*await receiving.get_invoice(session, invoice_id, scope=principal.store_id))


# --- cycle counts --------------------------------------------------------------------------------------------


@router.post("/counts", response_model=CountOut, status_code=201)
async def start_count(
    body: CountStartIn, request: Request, session: DbSession, auth: Auth, principal: Manager
) -> CountOut:
    count = await counts.start(
        session, auth.crypto, actor(request, principal), store_for(principal, body.store_id),
        product_ids=body.product_ids, category_id=body.category_id, note=body.note,
    )  # fmt: skip
    return _count(await counts.report(session, count.id))


@router.put("/counts/{count_id}/entries", response_model=CountOut)
async def enter_counts(count_id: PathId, body: CountEntriesIn, session: DbSession, principal: Manager) -> CountOut:
    entries = [(entry.product_id, entry.counted) for entry in body.entries]
    await counts.enter(session, count_id, entries, scope=principal.store_id)
    return _count(await counts.report(session, count_id))


@router.post("/counts/{count_id}/post", response_model=CountOut)
async def post_count(
    count_id: PathId, request: Request, session: DbSession, auth: Auth, principal: Manager
) -> CountOut:
    return _count(
        await counts.post(session, auth.crypto, actor(request, principal), count_id, scope=principal.store_id)
    )


@router.post("/counts/{count_id}/cancel", response_model=CountOut)
async def cancel_count(
    count_id: PathId, request: Request, session: DbSession, auth: Auth, principal: Manager
) -> CountOut:
    await counts.cancel(session, auth.crypto, actor(request, principal), count_id, scope=principal.store_id)
    return _count(await counts.report(session, count_id))


@router.get("/counts/{count_id}", response_model=CountOut)
async def get_count(count_id: PathId, session: DbSession, principal: Reports, only_variances: bool = False) -> CountOut:
    return _count(await counts.report(session, count_id, only_variances=only_variances, scope=principal.store_id))
