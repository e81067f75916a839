from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.auth.dependencies import Auth, actor, client_address, request_id_of, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.auth.service import ManagerCredentials, approving_manager
from posomni.database import Database
from posomni.dependencies import DbSession
from posomni.idempotency import service as idempotency
from posomni.kit.errors import ValidationFailed
from posomni.payments.models import Payment
from posomni.sales import receipts, service
from posomni.sales.dependencies import CheckoutDep, ReaderDep, RefundsDep
from posomni.sales.models import Sale
from posomni.sales.refund_saga import ReturnLineIn
from posomni.sales.saga import Completed, TenderIn, completion_scope
from posomni.sales.schemas import (
    CardPaymentIn,
    CompleteIn,
    CustomerAttach,
    DiscountIn,
    ItemAdd,
    NoReceiptReturnIn,
    PaymentOut,
    PriceOverride,
    QuantityChange,
    ReturnIn,
    SaleCreate,
    SaleOut,
    VoidIn,
    sale_view,
)
from posomni.shifts.schemas import ManagerApproval

router = APIRouter(tags=["sales"])
Seller = Annotated[Principal, Depends(require(Permission.SELL))]
Returner = Annotated[Principal, Depends(require(Permission.RETURN))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def sale_out(session: DbSession, sale: Sale) -> SaleOut:
    payments = list(await session.scalars(select(Payment).where(Payment.sale_id == sale.id).order_by(Payment.id)))
    return sale_view(sale, payments)


async def _manager_id(
    request: Request,
    session: AsyncSession,
    auth: Auth,
    principal: Principal,
    approval: ManagerApproval | None,
    action: str,
) -> int:
    credentials = ManagerCredentials.from_secret(approval.username, approval.secret) if approval else None
    manager = await approving_manager(
        session, auth, principal, credentials, action=action, request_id=request_id_of(request),
        client_address=client_address(request),
    )  # fmt: skip
    return manager.id


@router.post("/sales", response_model=SaleOut, status_code=201)
async def open_sale(body: SaleCreate, session: DbSession, principal: Seller) -> SaleOut:
    # A new sale has no payments yet.
    return sale_view(await service.open_sale(session, principal, body.register_id), [])


@router.get("/sales/current", response_model=SaleOut | None)
async def current_sale(
    session: DbSession, principal: Seller, register_id: Annotated[int | None, Query(ge=1)] = None
) -> SaleOut | None:
    register = register_id or principal.register_id
    if register is None:
        return None
    sale = await service.current_sale(session, register, principal.store_id)
    return None if sale is None else await sale_out(session, sale)


@router.get("/sales/suspended", response_model=list[SaleOut])
async def suspended_sales(session: DbSession, principal: Seller) -> list[SaleOut]:
    rows = await session.scalars(
        select(Sale.id).where(Sale.store_id == principal.store_id, Sale.status == "suspended").order_by(Sale.id)
    )
    return [await sale_out(session, await service.load(session, sale_id, principal.store_id)) for sale_id in rows]


@router.get("/sales/{sale_id}", response_model=SaleOut)
async def get_sale(sale_id: int, session: DbSession, principal: Seller) -> SaleOut:
    return await sale_out(session, await service.load(session, sale_id, principal.store_id))


@router.post("/sales/{sale_id}/items", response_model=SaleOut, status_code=201)
async def add_item(sale_id: int, body: ItemAdd, request: Request, session: DbSession, principal: Seller) -> SaleOut:
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    await service.add_item(
        session, request.app.state.cache, sale, code=body.code, product_id=body.product_id, quantity=body.quantity
    )
    return await sale_out(session, sale)


@router.patch("/sales/{sale_id}/lines/{line_id}", response_model=SaleOut)
async def change_quantity(
    sale_id: int, line_id: int, body: QuantityChange, session: DbSession, principal: Seller
) -> SaleOut:
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    await service.set_quantity(session, sale, line_id, body.quantity)
    return await sale_out(session, sale)


@router.delete("/sales/{sale_id}/lines/{line_id}", response_model=SaleOut)
async def remove_line(
    sale_id: int, line_id: int, request: Request, session: DbSession, auth: Auth, principal: Seller
) -> SaleOut:
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    await service.remove_line(session, auth.crypto, actor(request, principal), sale, line_id)
    return await sale_out(session, sale)


@router.post("/sales/{sale_id}/lines/{line_id}/price", response_model=SaleOut)
async def override_price(
    sale_id: int, line_id: int, body: PriceOverride, request: Request, session: DbSession, auth: Auth,
    principal: Seller,
) -> SaleOut:  # fmt: skip
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    manager = await _manager_id(request, session, auth, principal, body.manager, "sale.price_override")
    await service.override_price(
        session, auth.crypto, actor(request, principal), sale, line_id, price_cents=body.price_cents,
        reason=body.reason, manager_id=manager,
    )  # fmt: skip
    return await sale_out(session, sale)


async def _discount(
    sale_id: int, line_id: int | None, body: DiscountIn, request: Request, session: DbSession, auth: Auth,
    principal: Principal,
) -> SaleOut:  # fmt: skip
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    manager = await _manager_id(request, session, auth, principal, body.manager, "sale.discount")
    await service.discount(
        session, auth.crypto, actor(request, principal), sale, line_id=line_id, amount_cents=body.amount_cents,
        percent=body.percent / Decimal(100) if body.percent is not None else None, reason=body.reason,
        manager_id=manager,
    )  # fmt: skip
    return await sale_out(session, sale)


@router.post("/sales/{sale_id}/lines/{line_id}/discount", response_model=SaleOut)
async def discount_line(
    sale_id: int, line_id: int, body: DiscountIn, request: Request, session: DbSession, auth: Auth, principal: Seller
) -> SaleOut:
    return await _discount(sale_id, line_id, body, request, session, auth, principal)


@router.post("/sales/{sale_id}/discount", response_model=SaleOut)
async def discount_sale(
    sale_id: int, body: DiscountIn, request: Request, session: DbSession, auth: Auth, principal: Seller
) -> SaleOut:
    return await _discount(sale_id, None, body, request, session, auth, principal)


@router.put("/sales/{sale_id}/customer", response_model=SaleOut)
async def attach_customer(sale_id: int, body: CustomerAttach, session: DbSession, principal: Seller) -> SaleOut:
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    await service.set_customer(session, sale, body.customer_id)
    return await sale_out(session, sale)


@router.post("/sales/{sale_id}/suspend", response_model=SaleOut)
async def suspend(sale_id: int, session: DbSession, principal: Seller) -> SaleOut:
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    await service.suspend(session, sale)
    return await sale_out(session, sale)


@router.post("/sales/{sale_id}/resume", response_model=SaleOut)
async def resume(sale_id: int, session: DbSession, principal: Seller) -> SaleOut:
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    await service.resume(session, sale, principal)
    return await sale_out(session, sale)


@router.post("/sales/{sale_id}/cancel", response_model=SaleOut)
async def cancel(sale_id: int, request: Request, session: DbSession, auth: Auth, principal: Seller) -> SaleOut:
    sale = await service.load(session, sale_id, principal.store_id, lock=True)
    await service.cancel(session, auth.crypto, actor(request, principal), sale)
    return await sale_out(session, sale)


async def _as_json(database: Database, sale_id: int) -> dict[str, Any]:
    async with database.sessionmaker() as session:
        sale = await service.load(session, sale_id, None)
        return (await sale_out(session, sale)).model_dump(mode="json")


@router.post(
    "/sales/{sale_id}/complete",
    response_model=SaleOut,
    responses={402: {"description": "Card declined"}, 409: {"description": "Refused (stock, ID, hours …)"}},
)
async def complete(
    sale_id: int, body: CompleteIn, request: Request, checkout: CheckoutDep, principal: Seller,
    idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    """Run the checkout saga. Send an `Idempotency-Key`: a retry after a lost answer returns the same result."""
    who = actor(request, principal)
    tenders = [TenderIn(**t.model_dump()) for t in body.tenders]

    async def run(claim: idempotency.Claim | None) -> tuple[int, dict[str, Any]]:
        answer: dict[str, Any] = {}

        async def respond(session: AsyncSession, done: Completed) -> None:
            # The answer is stored with the completion itself, in the same transaction.
            answer.update(done.answer())
            if claim is not None:
                await idempotency.finish_in(session, claim.scope, claim.key, 200, answer)

        done = await checkout.complete_sale(sale_id, who, tenders, respond=respond)
        if done.payments is None:  # completed before: read it as it is now
            return 200, await _as_json(checkout.database, done.sale.id)
        if claim is not None:
            claim.finished = True
        return 200, answer

    stored = await idempotency.run_once(
        checkout.database, scope=completion_scope(principal.user_id, sale_id), key=idempotency_key,
        body=body.model_dump(mode="json"), call=run,
    )  # fmt: skip
    return JSONResponse(stored.body, status_code=stored.status)


@router.post("/sales/{sale_id}/card-payments", response_model=PaymentOut, status_code=201)
async def start_reader_payment(
    sale_id: int, body: CardPaymentIn, request: Request, reader: ReaderDep, principal: Seller
) -> PaymentOut:
    """Put an amount on the register's card reader; poll the payment until it is authorised, then complete the
    sale with `{"kind": "card", "payment_id": …}`."""
    return PaymentOut.model_validate(await reader.start(actor(request, principal), sale_id, body.amount_cents))


@router.get("/sales/{sale_id}/card-payments/{payment_id}", response_model=PaymentOut)
async def reader_payment(
    sale_id: int, payment_id: int, request: Request, reader: ReaderDep, principal: Seller
) -> PaymentOut:
    return PaymentOut.model_validate(await reader.refresh(actor(request, principal), sale_id, payment_id))


@router.post("/sales/{sale_id}/card-payments/{payment_id}/cancel", response_model=PaymentOut)
async def cancel_reader_payment(
    sale_id: int, payment_id: int, request: Request, reader: ReaderDep, principal: Seller
) -> PaymentOut:
    return PaymentOut.model_validate(await reader.cancel(actor(request, principal), sale_id, payment_id))


@router.get("/sales/{sale_id}/receipt", response_model=None)
async def receipt(
    sale_id: int,
    session: DbSession,
    principal: Seller,
    format: Annotated[Literal["json", "html", "text", "escpos"], Query()] = "json",
    copy: bool = False,
) -> Response:
    """The receipt as JSON, printable HTML (80 mm), plain text, or ESC/POS printer commands (`escpos`)."""
    sale = await service.load(session, sale_id, principal.store_id)
    built = await receipts.build(session, sale, copy=copy)
    if format == "escpos":
        return Response(receipts.to_escpos(built), media_type="application/octet-stream")
    if format == "html":
        return HTMLResponse(receipts.to_html(built))
    if format == "text":
        return PlainTextResponse(receipts.to_text(built))
    return JSONResponse(built.data)


@router.post("/sales/{sale_id}/void", response_model=SaleOut)
async def void(
    sale_id: int, body: VoidIn, request: Request, auth: Auth, refunds: RefundsDep, principal: Seller,
    idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    """Post-void of today's sale (a manager approves)."""
    # The approval in its own short transaction: the refunds below run transactions of their own.
    async with refunds.database.unit_of_work() as approval_session:
        manager = await _manager_id(request, approval_session, auth, principal, body.manager, "sale.void")
    who = actor(request, principal)

    async def run(_: idempotency.Claim | None) -> tuple[int, dict[str, Any]]:
        sale = await refunds.void_sale(who, sale_id, reason=body.reason, manager_id=manager)
        return 200, await _as_json(refunds.database, sale.id)

    stored = await idempotency.run_once(
        refunds.database, scope=f"user:{principal.user_id}:sale:{sale_id}:void", key=idempotency_key,
        body=body.model_dump(mode="json"), call=run,
    )  # fmt: skip
    return JSONResponse(stored.body, status_code=stored.status)


@router.post("/returns", response_model=SaleOut, status_code=201)
async def create_return(
    body: ReturnIn, request: Request, refunds: RefundsDep, principal: Returner, idempotency_key: IdempotencyKey = None
) -> Response:
    """Return items of a receipt; the money goes back to the tenders that paid (cards first)."""
    register = body.register_id or principal.register_id
    if register is None:
        raise ValidationFailed("Which register? Sign in at a register or pass register_id.")
    who = actor(request, principal)
    lines = [ReturnLineIn(line.original_line_id, line.quantity, line.restock) for line in body.lines]

    async def run(_: idempotency.Claim | None) -> tuple[int, dict[str, Any]]:
        sale = await refunds.return_items(who, body.receipt_number, lines, reason=body.reason, register_id=register)
        return 201, await _as_json(refunds.database, sale.id)

    stored = await idempotency.run_once(
        refunds.database, scope=f"user:{principal.user_id}:returns", key=idempotency_key,
        body=body.model_dump(mode="json"), call=run,
    )  # fmt: skip
    return JSONResponse(stored.body, status_code=stored.status)


@router.get("/receipts/{receipt_number}", response_model=SaleOut)
async def by_receipt(receipt_number: str, session: DbSession, principal: Returner) -> SaleOut:
    """Find a sale by its receipt number (scanned from the receipt's barcode) for a return."""
    return await sale_out(session, await service.by_receipt(session, receipt_number, principal.store_id))


@router.post("/returns/without-receipt", response_model=SaleOut, status_code=201)
async def return_without_receipt(
    body: NoReceiptReturnIn, request: Request, auth: Auth, refunds: RefundsDep, principal: Returner
) -> Response:
    """Items returned without a receipt, as the store's policy allows (usually with a manager): refunded in cash
    at today's price."""
    register = body.register_id or principal.register_id
    if register is None:
        raise ValidationFailed("Which register? Sign in at a register or pass register_id.")
    manager_id: int | None = None
    if body.manager is not None or principal.can(Permission.OVERRIDE):
        async with refunds.database.unit_of_work() as approval_session:
            manager_id = await _manager_id(request, approval_session, auth, principal, body.manager, "sale.return")
    sale = await refunds.return_without_receipt(
        actor(request, principal), [(line.code, line.quantity, line.restock) for line in body.lines],
        reason=body.reason, register_id=register, manager_id=manager_id, cache=request.app.state.cache,
    )  # fmt: skip
    return JSONResponse(await _as_json(refunds.database, sale.id), status_code=201)
