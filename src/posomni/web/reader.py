"""Card-present payments from the register screen: start one on the register's reader, follow it, cancel it.

The checkout accepts a card tender that is already authorised on the reader (`payment_id`); nothing in the
API starts one, so the screen's helpers do, with the same rules as the checkout's own card step:

- a deterministic idempotency key per attempt (`sale:<id>:reader:<n>:authorize`), so a retried request after a
  lost answer finds the same payment at the processor instead of charging twice;
- short transactions only: the row is written and committed before the processor is called, and no row lock
  or SQLite write transaction is held while waiting for the network;
- rows only move forward (`payments.service.apply_card_result`).

TODO(sales): this belongs beside the checkout saga (`sales`/`payments`); it lives here until that API exists.
"""

from __future__ import annotations

from sqlalchemy import func, select

from posomni.auth.principal import Actor
from posomni.database import Database
from posomni.kit.errors import NotFound, ValidationFailed
from posomni.payments import service as payments
from posomni.payments.gateway import (
    AuthorizeRequest,
    CardPaymentsDisabled,
    CardResult,
    CardStatus,
    PaymentError,
    PaymentGateway,
    ProcessorUnavailable,
)
from posomni.payments.models import Payment, PaymentStatus
from posomni.sales import service as sales
from posomni.stores.models import Register, Store
from posomni.web.schemas import ReaderPaymentOut


class NoCardReader(ValidationFailed):
    code = "no_card_reader"
    default_message = "This register has no card reader paired: choose another tender."


def payment_out(payment: Payment) -> ReaderPaymentOut:
    return ReaderPaymentOut(
        payment_id=payment.id,
        sale_id=payment.sale_id,
        status=payment.status,
        amount_cents=payment.amount_cents,
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
        failure_code=payment.failure_code,
        failure_message=payment.failure_message,
    )


async def start(
    database: Database, gateway: PaymentGateway | None, actor: Actor, sale_id: int, amount_cents: int
) -> ReaderPaymentOut:
    if gateway is None:
        raise CardPaymentsDisabled()
    async with database.unit_of_work() as session:
        sale = await sales.load(session, sale_id, actor.store_id, lock=True)
        sales.require_open(sale)
        register = await session.get(Register, sale.register_id)
        store = await session.get(Store, sale.store_id)
        assert register is not None and store is not None  # foreign keys
        if not register.card_reader_id:
            raise NoCardReader()
        if amount_cents > sale.total_cents:
            # Change is given in cash only: a card never pays more than the sale (the checkout checks it too).
            raise ValidationFailed(
                "The card amount is more than the sale's total.", details={"total_cents": sale.total_cents}
            )
        reader_id, currency = register.card_reader_id, store.currency
        attempt = 1 + int(
            await session.scalar(
                select(func.count()).select_from(Payment).where(Payment.sale_id == sale.id, Payment.tender == "card")
            )
            or 0
        )
        key = f"sale:{sale.id}:reader:{attempt}:authorize"
        payment = Payment(
            sale_id=sale.id, tender="card", provider=gateway.name, status=PaymentStatus.PENDING.value,
            amount_cents=amount_cents, idempotency_key=key,
        )  # fmt: skip
        session.add(payment)
        await session.flush()
        payment_id = payment.id
    request = AuthorizeRequest(
        amount_cents=amount_cents, currency=currency, idempotency_key=key, reference=f"sale:{sale_id}",
        reader_id=reader_id, metadata={"sale_id": str(sale_id), "payment_id": str(payment_id)},
        request_id=actor.request_id,
    )  # fmt: skip
    try:
        result = await gateway.authorize(request)
    except PaymentError as exc:
        await _failed(database, payment_id, exc)
        raise
    return await _apply(database, payment_id, result)


async def _load(database: Database, payment_id: int, store_id: int | None) -> tuple[Payment, str | None]:
    async with database.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        if payment is None or payment.tender != "card":
            raise NotFound("No such card payment.", details={"payment_id": payment_id})
        sale = await sales.load(session, payment.sale_id, store_id)
        register = await session.get(Register, sale.register_id)
        session.expunge(payment)
        return payment, register.card_reader_id if register else None


async def refresh(
    database: Database, gateway: PaymentGateway | None, actor: Actor, payment_id: int
) -> ReaderPaymentOut:
    payment, _ = await _load(database, payment_id, actor.store_id)
    if gateway is None or payment.provider_reference is None or PaymentStatus(payment.status) in payments.FINAL:
        return payment_out(payment)
    result = await gateway.retrieve(payment.provider_reference, request_id=actor.request_id)
    return await _apply(database, payment_id, result)


async def cancel(database: Database, gateway: PaymentGateway | None, actor: Actor, payment_id: int) -> ReaderPaymentOut:
    payment, reader_id = await _load(database, payment_id, actor.store_id)
    if gateway is None or payment.provider_reference is None or PaymentStatus(payment.status) in payments.FINAL:
        return payment_out(payment)
    if reader_id:
        await gateway.cancel_reader(reader_id, request_id=actor.request_id)
    result = await gateway.retrieve(payment.provider_reference, request_id=actor.request_id)
    if result.status is CardStatus.AUTHORIZED:
        # The customer tapped just before the cancel: release the hold.
        result = await gateway.void(
            payment.provider_reference, idempotency_key=f"payment:{payment.id}:cancel-reader",
            request_id=actor.request_id,
        )  # fmt: skip
    return await _apply(database, payment_id, result)


async def _apply(database: Database, payment_id: int, result: CardResult) -> ReaderPaymentOut:
    async with database.unit_of_work() as session:
        payment = await session.get(Payment, payment_id, with_for_update=True)
        assert payment is not None  # written above
        payments.apply_card_result(payment, result)
        await session.flush()
        return payment_out(payment)


async def _failed(database: Database, payment_id: int, exc: PaymentError) -> None:
    async with database.unit_of_work() as session:
        payment = await session.get(Payment, payment_id, with_for_update=True)
        assert payment is not None
        # An unreachable processor may still have started the payment: keep it pending, so the sale's
        # compensation or reconciliation finds and voids it (as the checkout does).
        if not isinstance(exc, ProcessorUnavailable):
            payment.status = PaymentStatus.FAILED.value
        payment.failure_code = exc.code
        payment.failure_message = exc.message[:300]
