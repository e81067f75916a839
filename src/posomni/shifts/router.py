from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from posomni.auth.dependencies import Auth, actor, client_address, request_id_of, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.auth.service import ManagerCredentials, approving_manager
from posomni.dependencies import DbSession
from posomni.shifts import reports, service
from posomni.shifts.schemas import (
    CashMovementIn,
    CashMovementOut,
    NoSaleIn,
    ShiftClose,
    ShiftOpen,
    ShiftOut,
    ShiftReportOut,
)
from posomni.stores.models import Store

router = APIRouter(prefix="/shifts", tags=["shifts"])
Cashier = Annotated[Principal, Depends(require(Permission.SHIFT_OPEN))]
Closer = Annotated[Principal, Depends(require(Permission.DRAWER_CLOSE))]
Format = Annotated[Literal["json", "html", "csv"], Query()]


@router.post("", response_model=ShiftOut, status_code=201)
async def open_shift(body: ShiftOpen, request: Request, session: DbSession, auth: Auth, principal: Cashier) -> ShiftOut:
    shift = await service.open_shift(
        session, auth.crypto, actor(request, principal), register_id=body.register_id,
        opening_float_cents=body.opening_float_cents,
    )  # fmt: skip
    return ShiftOut.model_validate(shift)


@router.get("/current", response_model=ShiftOut | None)
async def current_shift(
    session: DbSession, principal: Cashier, register_id: Annotated[int, Query(ge=1)]
) -> ShiftOut | None:
    await service.register_in_store(session, register_id, principal.store_id)
    shift = await service.open_shift_for(session, register_id)
    return None if shift is None else ShiftOut.model_validate(shift)


@router.get("/{shift_id}", response_model=ShiftOut)
async def get_shift(shift_id: int, session: DbSession, principal: Cashier) -> ShiftOut:
    return ShiftOut.model_validate(await service.get(session, shift_id, principal.store_id))


@router.post("/{shift_id}/cash-movements", response_model=CashMovementOut, status_code=201)
async def cash_movement(
    shift_id: int, body: CashMovementIn, request: Request, session: DbSession, auth: Auth, principal: Cashier
) -> CashMovementOut:
    shift = await service.get(session, shift_id, principal.store_id)
    approved_by = None
    if body.kind == "paid_out":
        # Cash leaving the drawer needs a manager.
        credentials = (
            ManagerCredentials.from_secret(body.manager.username, body.manager.secret) if body.manager else None
        )
        manager = await approving_manager(
            session, auth, principal, credentials, action="drawer.paid_out", request_id=request_id_of(request),
            client_address=client_address(request),
        )  # fmt: skip
        approved_by = manager.id
    movement = await service.cash_movement(
        session, auth.crypto, actor(request, principal), shift, kind=body.kind, amount_cents=body.amount_cents,
        reason=body.reason, approved_by=approved_by,
    )  # fmt: skip
    return CashMovementOut.model_validate(movement)


@router.post("/{shift_id}/no-sale", response_model=CashMovementOut, status_code=201)
async def no_sale(
    shift_id: int, body: NoSaleIn, request: Request, session: DbSession, auth: Auth, principal: Cashier
) -> CashMovementOut:
    shift = await service.get(session, shift_id, principal.store_id)
    movement = await service.cash_movement(
        session, auth.crypto, actor(request, principal), shift, kind="no_sale", amount_cents=0, reason=body.reason
    )
    return CashMovementOut.model_validate(movement)


async def _render(session: DbSession, report: reports.ShiftReport, fmt: str) -> Response:
    if fmt == "csv":
        return PlainTextResponse(reports.to_csv(report), media_type="text/csv")
    if fmt == "html":
        store = await session.get(Store, report.store_id)
        return HTMLResponse(reports.to_html(report, store.name if store else ""))
    return JSONResponse(report.as_dict())


@router.get("/{shift_id}/x-report", response_model=ShiftReportOut)
async def x_report(shift_id: int, session: DbSession, principal: Cashier, format: Format = "json") -> Response:
    shift = await service.get(session, shift_id, principal.store_id)
    return await _render(
        session, await reports.build(session, shift, kind="X" if shift.status == "open" else "Z"), format
    )


@router.post("/{shift_id}/close", response_model=ShiftReportOut)
async def close_shift(
    shift_id: int, body: ShiftClose, request: Request, session: DbSession, auth: Auth, principal: Closer
) -> Response:
    shift = await service.get(session, shift_id, principal.store_id)
    report = await service.close_shift(
        session, auth.crypto, actor(request, principal), shift, counted_cash_cents=body.counted_cash_cents
    )
    return JSONResponse(report.as_dict())


@router.get("/{shift_id}/z-report", response_model=ShiftReportOut)
async def z_report(shift_id: int, session: DbSession, principal: Closer, format: Format = "json") -> Response:
    shift = await service.get(session, shift_id, principal.store_id)
    if shift.status != "closed":
        raise service.ShiftStillOpen()
    report = await reports.build(session, shift, kind="Z")
    report.audit_chain_head = await reports.chain_head(session, shift.store_id)
    return await _render(session, report, format)
