"""Card-present payments on the register's reader, taken before the sale is completed.

The register asks for a card payment; a payment row is saved first (with its idempotency key), then the
processor is asked to put the amount on the reader. The customer taps; the register polls (or a webhook
arrives) until the payment is authorised, then completes the sale with that payment as a card tender. The
register can cancel while the reader waits. Like the checkout, no database lock is held during a processor call.
"""

from __future__ import annotations

from sqlalchemy import func, select

from posomni.auth.principal import Actor
from posomni.database import Database
from posomni.kit.errors import ValidationFailed
from posomni.payments import service as payments
from posomni.payments.gateway import (
    AuthorizeRequest,
    CardPaymentsDisabled,
    CardResult,
    PaymentError,
    PaymentGateway,
    check_amount,
)
from posomni.payments.models import Payment, PaymentStatus
from posomni.sales import service as sales
from posomni.stores.models import Register, Store


class NoCardReader(ValidationFailed):
    code = "no_card_reader"
    default_message = "This register has no card reader paired; use a keyed card or another tender."


class ReaderPayments:
    def __init__(self, database: Database, gateway: PaymentGateway | None) -> None:
        self.database = database
        self.gateway = gateway

    def _gateway(self) -> PaymentGateway:
        if self.gateway is None:
            raise CardPaymentsDisabled()
        return self.gateway

    async def start(self, actor: Actor, sale_id: int, amount_cents: int) -> Payment:
        gateway = self._gateway()
        check_amount(amount_cents)
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, sale_id, actor.store_id, lock=True)
            sales.require_open(sale)
            register = await session.get(Register, sale.register_id)
            store = await session.get(Store, sale.store_id)
            assert register is not None and store is not None
            if not register.card_reader_id:
                raise NoCardReader(details={"register_id": register.id})
            if amount_cents > sale.total_cents:
                raise ValidationFailed(
                    "The card cannot pay more than the total.", details={"total_cents": sale.total_cents}
                )
            attempt = 1 + int(
                await session.scalar(select(func.count()).where(Payment.sale_id == sale.id, Payment.tender == "card"))
                or 0
            )
            key = payments.card_idempotency_key(sale.id, "reader", attempt)
            payment = Payment(
                sale_id=sale.id, tender="card", provider=gateway.name, status=PaymentStatus.PENDING.value,
                amount_cents=amount_cents, idempotency_key=key,
            )  # fmt: skip
            session.add(payment)
            await session.commit()
            payment_id, reader_id, currency = payment.id, register.card_reader_id, store.currency
        request = AuthorizeRequest(
            amount_cents=amount_cents, currency=currency, idempotency_key=key, reference=f"sale:{sale_id}",
            reader_id=reader_id, request_id=actor.request_id,
            metadata={"sale_id": str(sale_id), "payment_id": str(payment_id), "store_id": str(actor.store_id or "")},
        )  # fmt: skip
        try:
            result = await gateway.authorize(request)
        except PaymentError as exc:
            await self._fail(payment_id, exc)
            raise
        return await self._apply(payment_id, result)

    async def _apply(self, payment_id: int, result: CardResult) -> Payment:
        async with self.database.sessionmaker() as session:
            payment = await session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
            assert payment is not None
            payments.apply_card_result(payment, result)
            await session.commit()
            return payment

    async def _fail(self, payment_id: int, exc: PaymentError) -> None:
        async with self.database.sessionmaker() as session:
            payment = await session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
            assert payment is not None
            payments.move(payment, PaymentStatus.FAILED)
            payment.failure_code = exc.code
            payment.failure_message = exc.message[:300]
            await session.commit()

    async def _payment(self, actor: Actor, sale_id: int, payment_id: int) -> Payment:
        async with self.database.sessionmaker() as session:
            await sales.load(session, sale_id, actor.store_id)
            payment = await session.get(Payment, payment_id)
            if payment is None or payment.sale_id != sale_id or payment.tender != "card":
                raise ValidationFailed("No such card payment on this sale.", details={"payment_id": payment_id})
            return payment

    async def refresh(self, actor: Actor, sale_id: int, payment_id: int) -> Payment:
        """Ask the processor how the reader payment stands (the register polls this while the reader waits)."""
        payment = await self._payment(actor, sale_id, payment_id)
        if payment.provider_reference is None or payment.status != PaymentStatus.PENDING.value:
            return payment
        result = await self._gateway().retrieve(payment.provider_reference, request_id=actor.request_id)
        return await self._apply(payment_id, result)

    async def cancel(self, actor: Actor, sale_id: int, payment_id: int) -> Payment:
        gateway = self._gateway()
        payment = await self._payment(actor, sale_id, payment_id)
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, sale_id, None)
            register = await session.get(Register, sale.register_id)
            reader_id = register.card_reader_id if register else None
        if reader_id is None or payment.provider_reference is None:
            return payment
        async with self.database.sessionmaker() as session:
            fresh = await session.get(Payment, payment_id)
            assert fresh is not None
            # End the read transaction before the processor is called (on SQLite it would hold the write lock).
            await session.commit()
            await payments.cancel_reader_payment(session, gateway, fresh, reader_id, request_id=actor.request_id)
            await session.commit()
            return fresh
