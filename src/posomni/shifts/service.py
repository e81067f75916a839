"""Register sessions: open with a counted float, cash in and out, no-sale opens, close with counted cash."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.kit.errors import Conflict, NotFound, ValidationFailed
from posomni.kit.time import local_date, utcnow
from posomni.outbox import service as outbox
from posomni.security.crypto import EncryptionService
from posomni.shifts import reports
from posomni.shifts.models import CashMovement, Shift
from posomni.stores.models import Register, Store


class ShiftAlreadyOpen(Conflict):
    code = "shift_already_open"
    default_message = "This register already has an open shift."


class NoOpenShift(Conflict):
    code = "no_open_shift"
    default_message = "Open a shift on this register first (count the float)."


class ShiftClosed(Conflict):
    code = "shift_closed"
    default_message = "This shift is closed."


class ShiftStillOpen(Conflict):
    code = "shift_still_open"
    default_message = "The Z report exists once the shift is closed; use the X report meanwhile."


class ShiftHasOpenSales(Conflict):
    code = "shift_has_open_sales"
    default_message = "Finish, suspend or cancel the open sales of this shift before closing it."


async def register_in_store(session: AsyncSession, register_id: int, store_id: int | None) -> Register:
    register = await session.get(Register, register_id)
    if register is None or not register.is_active or (store_id is not None and register.store_id != store_id):
        raise ValidationFailed("Unknown register for this store.", details={"register_id": register_id})
    return register


async def open_shift_for(session: AsyncSession, register_id: int) -> Shift | None:
    return await session.scalar(select(Shift).where(Shift.register_id == register_id, Shift.status == "open"))


async def require_open_shift(session: AsyncSession, register_id: int) -> Shift:
    shift = await open_shift_for(session, register_id)
    if shift is None:
        raise NoOpenShift(details={"register_id": register_id})
    return shift


async def get(session: AsyncSession, shift_id: int, store_id: int | None) -> Shift:
    shift = await session.get(Shift, shift_id)
    if shift is None or (store_id is not None and shift.store_id != store_id):
        raise NotFound("No such shift.", details={"shift_id": shift_id})
    return shift


async def open_shift(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, *, register_id: int, opening_float_cents: int
) -> Shift:
    register = await register_in_store(session, register_id, actor.store_id)
    if await open_shift_for(session, register.id) is not None:
        raise ShiftAlreadyOpen(details={"register_id": register.id})
    store = await session.get(Store, register.store_id)
    assert store is not None
    now = utcnow()
    shift = Shift(
        store_id=register.store_id,
        register_id=register.id,
        business_date=local_date(store.timezone, now),
        opened_by=actor.user_id,
        opened_at=now,
        opening_float_cents=opening_float_cents,
    )
    session.add(shift)
    await session.flush()
    await audit.record(
        session, crypto, actor, "shift.opened", store_id=register.store_id, target_type="shift", target_id=shift.id,
        details={"register_id": register.id, "opening_float_cents": opening_float_cents},
    )  # fmt: skip
    return shift


async def cash_movement(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    shift: Shift,
    *,
    kind: str,
    amount_cents: int,
    reason: str,
    approved_by: int | None = None,
) -> CashMovement:
    if shift.status != "open":
        raise ShiftClosed()
    if kind == "no_sale":
        amount_cents = 0
    elif amount_cents <= 0:
        raise ValidationFailed("The amount must be positive.", details={"field": "amount_cents"})
    movement = CashMovement(
        shift_id=shift.id, kind=kind, amount_cents=amount_cents, reason=reason, actor_id=actor.user_id,
        approved_by=approved_by,
    )  # fmt: skip
    session.add(movement)
    await session.flush()
    action = "drawer.no_sale" if kind == "no_sale" else f"drawer.{kind}"
    await audit.record(
        session, crypto, actor, action, store_id=shift.store_id, target_type="shift", target_id=shift.id,
        details={"amount_cents": amount_cents, "reason": reason, "approved_by": approved_by},
    )  # fmt: skip
    return movement


async def close_shift(
    session: AsyncSession, crypto: EncryptionService, actor: Actor, shift: Shift, *, counted_cash_cents: int
) -> reports.ShiftReport:
    # Lock the shift so two closes (or a close and a sale) cannot interleave.
    locked = await session.scalar(select(Shift).where(Shift.id == shift.id).with_for_update())
    assert locked is not None
    if locked.status != "open":
        raise ShiftClosed()
    if await reports.open_sales_count(session, locked.id):
        raise ShiftHasOpenSales()
    report = await reports.build(session, locked, kind="Z")
    locked.status = "closed"
    locked.closed_by = actor.user_id
    locked.closed_at = utcnow()
    locked.expected_cash_cents = report.expected_cash_cents
    locked.counted_cash_cents = counted_cash_cents
    locked.over_short_cents = counted_cash_cents - report.expected_cash_cents
    await session.flush()
    final = await reports.build(session, locked, kind="Z")
    await audit.record(
        session, crypto, actor, "shift.closed", store_id=locked.store_id, target_type="shift", target_id=locked.id,
        details={
            "expected_cash_cents": final.expected_cash_cents, "counted_cash_cents": counted_cash_cents,
            "over_short_cents": locked.over_short_cents, "net_sales_cents": final.net_sales_cents,
        },
    )  # fmt: skip
    # The chain head after the close entry: printed on the Z report so a paper copy anchors the audit log.
    final.audit_chain_head = await reports.chain_head(session, locked.store_id)
    # The Z report goes to the back office with the close, in its transaction; the key is the shift's, so a
    # retried close can never send it twice.
    await outbox.enqueue(
        session, store_id=locked.store_id, topic="shift.closed", aggregate_id=str(locked.id),
        payload=final.as_dict(), idempotency_key=f"shift:{locked.id}:closed", request_id=actor.request_id,
    )  # fmt: skip
    return final
