"""Completing a sale: a saga of short transactions whose progress is saved after every step.

    started → compliance → reserved → authorized → captured → completed

1. started     the sale is locked, priced and checked, its tender plan saved; status `completing`
2. compliance  ID check and sale hours at tender time, for age-restricted lines
3. reserved    stock reserved (and loyalty points taken), in one transaction
4. authorized  every card tender authorised by the processor (a payment row is saved *before* each call, so a
               crash between the call and its answer is still known)
5. captured    every authorisation captured
6. completed   stock committed, cash recorded, loyalty earned, sale completed, audit entry and back-office
               message written — one transaction

No database lock is held while the card processor is called. A failure runs the compensations of the steps
before it (void authorisations, refund captures, release stock, give points back) and leaves the sale open
with the reason, ready for another tender. A process killed half-way leaves the sale `completing`; `recover`
(at start-up and `posomni sagas recover`) finishes it when money was captured and compensates it otherwise.
Every processor call carries an idempotency key derived from the sale, its attempt and the step, so a replay
never charges twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.compliance import service as compliance
from posomni.customers import service as customers
from posomni.database import Database
from posomni.idempotency import service as idempotency
from posomni.inventory import service as inventory
from posomni.kit.errors import PosError
from posomni.kit.time import utcnow
from posomni.logging import get_logger
from posomni.monitoring import metrics as monitoring_metrics
from posomni.payments import service as payments
from posomni.payments.gateway import (
    AuthorizeRequest,
    CardPaymentsDisabled,
    CardResult,
    CardStatus,
    PaymentError,
    PaymentGateway,
    ProcessorUnavailable,
    check_amount,
)
from posomni.payments.models import Payment, PaymentStatus
from posomni.sales import service as sales
from posomni.sales.errors import (
    CardNotReady,
    CheckoutFailed,
    EmptySale,
    SaleCompleting,
    SaleNotFound,
    TenderInvalid,
    TendersDoNotCover,
)
from posomni.sales.models import Sale, SaleStatus
from posomni.sales.schemas import sale_view
from posomni.security.crypto import EncryptionService
from posomni.stores.models import Store
from posomni.users.models import User

log = get_logger(__name__)

STEPS = ("started", "compliance", "reserved", "authorized", "captured", "completed")
# How long a step may run before another process may take the sale over as abandoned. Longer than the card
# processor's worst case (3 retries of 30 s).
LEASE = timedelta(minutes=3)


@dataclass(frozen=True)
class TenderIn:
    kind: str  # cash | card | loyalty
    amount_cents: int = 0
    tendered_cents: int = 0
    payment_method: str | None = None
    payment_id: int | None = None
    points: int = 0


def completion_scope(user_id: int | None, sale_id: int) -> str:
    """The Idempotency-Key scope of a completion request (`POST /sales/{id}/complete`)."""
    return f"user:{user_id}:sale:{sale_id}:complete"


@dataclass
class Completed:
    """A completed sale and its payments as written (`payments` None: completed before, not loaded here)."""

    sale: Sale
    payments: list[Payment] | None

    def answer(self) -> dict[str, Any]:
        """The API's answer for the sale (`SaleOut` as JSON), built from the objects as written."""
        return sale_view(self.sale, self.payments or []).model_dump(mode="json")


@dataclass
class _Run:
    """What one attempt learnt in its first transaction, so that later steps do not read it again."""

    sale_id: int
    store_id: int
    currency: str
    store_settings: dict[str, Any]
    attempt: int
    tenders: list[dict[str, Any]]
    # A refusal by the first transaction's compliance or reservation: the saga compensates it.
    failure: PosError | None = None

    @property
    def cards(self) -> bool:
        return any(tender["kind"] == "card" for tender in self.tenders)


# Called in the finalising transaction with the completed sale, before the commit.
Respond = Callable[[AsyncSession, Completed], Awaitable[None]]


class StepObserver:
    """Called after each step is saved. Tests use it to stop the process at a chosen point."""

    async def after(self, sale_id: int, step: str) -> None:
        return None


class Checkout:
    def __init__(
        self,
        database: Database,
        crypto: EncryptionService,
        gateway: PaymentGateway | None,
        *,
        observer: StepObserver | None = None,
    ) -> None:
        self.database = database
        self.crypto = crypto
        self.gateway = gateway
        self.observer = observer or StepObserver()

    # --- the saga --------------------------------------------------------------------------------------

    async def complete(self, sale_id: int, actor: Actor, tenders: list[TenderIn]) -> Sale:
        return (await self.complete_sale(sale_id, actor, tenders)).sale

    async def complete_sale(
        self, sale_id: int, actor: Actor, tenders: list[TenderIn], *, respond: Respond | None = None
    ) -> Completed:
        """Run the saga; the completed sale with its payments (None when it was completed before). `respond` is
        called in the finalising transaction, before its commit (to store the answer with the change)."""
        begun = await self._begin(sale_id, actor, tenders)
        if isinstance(begun, Sale):
            return Completed(begun, None)  # completed before: the same sale again, nothing done twice
        run = begun
        if run.failure is None:
            await self.observer.after(sale_id, "started")
        try:
            if run.failure is not None:
                raise run.failure
            # Saved by the first transaction together with "started".
            await self.observer.after(sale_id, "compliance")
            await self.observer.after(sale_id, "reserved")
            await self._authorize(run, actor)
            await self.observer.after(sale_id, "authorized")
            if run.cards:
                await self._capture(sale_id, actor)
            await self.observer.after(sale_id, "captured")
            done = await self._finalize(sale_id, actor, run, respond)
        except Exception as exc:
            await self._compensate(sale_id, actor, exc)
            if isinstance(exc, PosError):
                raise
            log.exception("checkout_step_failed", sale_id=sale_id)
            raise CheckoutFailed() from exc
        await self.observer.after(sale_id, "completed")
        return done

    async def _save_step(self, sale_id: int, step: str) -> None:
        async with self.database.sessionmaker() as session:
            sale = await _lock(session, sale_id)
            sale.checkout_step = step
            sale.checkout_state = {**sale.checkout_state, "lease_until": _lease()}
            await session.commit()

    async def _begin(self, sale_id: int, actor: Actor, tenders: list[TenderIn]) -> Sale | _Run:
        """Steps started, compliance and reserved, in one transaction (none of them calls the processor): the
        sale is locked, priced and checked, its tender plan saved, status `completing`; the ID check and sale
        hours at tender time; stock reserved and loyalty points taken. Saved as step `reserved`.

        A refusal by the compliance step keeps its records: the sale is saved `completing` at step `started`
        with them, and the failure is returned for the compensation, as when it was a transaction of its own.
        A failure while reserving undoes the reservation (savepoint): the sale is saved at step `compliance`."""
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, sale_id, actor.store_id, lock=True)
            if sale.status == SaleStatus.COMPLETED.value:
                return sale
            if sale.status == SaleStatus.COMPLETING.value:
                raise SaleCompleting()
            sales.require_open(sale)
            if not sale.lines:
                raise EmptySale()
            store = await session.get(Store, sale.store_id)
            assert store is not None
            await sales.reprice(session, sale, flush=False)
            plan = await self._plan(session, sale, store, tenders)
            attempt = int(sale.checkout_state.get("attempt", 0)) + 1
            sale.status = SaleStatus.COMPLETING.value
            sale.checkout_step = "started"
            sale.failure_code = None
            sale.failure_message = None
            sale.checkout_state = {"attempt": attempt, "tenders": plan, "actor_id": actor.user_id,
                                   "lease_until": _lease()}  # fmt: skip
            run = _Run(sale_id, store.id, store.currency, dict(store.settings or {}), attempt, plan)
            try:
                await self._check_compliance(session, sale, store)
            except PosError as exc:
                # A refusal's compliance event must be kept even though the sale fails.
                run.failure = exc
                await session.commit()
                return run
            sale.checkout_step = "reserved"
            try:
                async with session.begin_nested():  # writes the sale first, then SAVEPOINT
                    await self._reserve(session, sale, plan)
            except PosError as exc:
                run.failure = exc
                sale.checkout_step = "compliance"
            await session.commit()
            return run

    async def _plan(
        self, session: AsyncSession, sale: Sale, store: Store, tenders: list[TenderIn]
    ) -> list[dict[str, Any]]:
        """Check the tenders against the total; return the plan saved with the sale."""
        if not tenders:
            raise TendersDoNotCover("Choose a tender.")
        plan: list[dict[str, Any]] = []
        non_cash = 0
        cash_given = 0
        for index, tender in enumerate(tenders):
            if tender.kind == "card":
                if tender.payment_id is not None:
                    payment = await session.get(Payment, tender.payment_id)
                    if payment is None or payment.sale_id != sale.id or payment.tender != "card":
                        raise TenderInvalid("That card payment does not belong to this sale.")
                    amount = payment.amount_cents
                else:
                    if self.gateway is None:
                        raise CardPaymentsDisabled()
                    if not tender.payment_method:
                        raise TenderInvalid("A card tender needs a payment method or a reader payment.")
                    amount = tender.amount_cents
                check_amount(amount)
                non_cash += amount
                plan.append({"index": index, "kind": "card", "amount_cents": amount,
                             "payment_method": tender.payment_method, "payment_id": tender.payment_id,
                             "preauthorized": tender.payment_id is not None})  # fmt: skip
            elif tender.kind == "loyalty":
                if sale.customer_id is None:
                    raise TenderInvalid("Attach the customer before paying with points.")
                amount = tender.amount_cents
                points = customers.points_for_amount(amount, store.settings or {})
                if amount <= 0:
                    raise TenderInvalid("Points must pay a positive amount.")
                non_cash += amount
                plan.append({"index": index, "kind": "loyalty", "amount_cents": amount, "points": points})
            elif tender.kind == "cash":
                if tender.tendered_cents <= 0:
                    raise TenderInvalid("Enter the cash given.")
                cash_given += tender.tendered_cents
            else:
                raise TenderInvalid(f"Unknown tender {tender.kind!r}.")
        if non_cash > sale.total_cents:
            # Change is given only in cash: cards and points may not pay more than the total.
            raise TendersDoNotCover(
                "Card and points pay more than the total.", details=self._amounts(sale, non_cash, 0)
            )
        cash_due = sale.total_cents - non_cash
        if cash_given < cash_due:
            raise TendersDoNotCover(details=self._amounts(sale, non_cash, cash_given))
        if cash_given:
            plan.append({"kind": "cash", "amount_cents": cash_due, "tendered_cents": cash_given,
                         "change_cents": cash_given - cash_due})  # fmt: skip
        return plan

    @staticmethod
    def _amounts(sale: Sale, non_cash: int, cash: int) -> dict[str, int]:
        return {"total_cents": sale.total_cents, "card_and_points_cents": non_cash, "cash_given_cents": cash}

    async def _check_compliance(self, session: AsyncSession, sale: Sale, store: Store) -> None:
        """The ID check and sale hours at tender time, for age-restricted lines."""
        restricted = [line for line in sale.lines if line.age_restricted]
        if not restricted:
            return
        clerk = await session.get(User, sale.cashier_id)
        assert clerk is not None
        decision = await compliance.authorize_sale(
            session, self.crypto, store=store, sale_id=sale.id, clerk=clerk,
            required_min_age=max(line.min_age or 21 for line in restricted),
            customer_id=sale.customer_id, at=utcnow(), register_id=sale.register_id,
        )  # fmt: skip
        sale.age_verified = True
        sale.age_verified_by = decision.verified_by
        sale.id_scanned = decision.id_scanned

    async def _reserve(self, session: AsyncSession, sale: Sale, plan: list[dict[str, Any]]) -> None:
        await inventory.reserve(session, sale.store_id, sales.stock_items(sale), reference=f"sale:{sale.id}")
        for tender in plan:
            if tender["kind"] == "loyalty" and sale.customer_id is not None:
                await customers.redeem(session, sale.customer_id, int(tender["points"]))

    async def _authorize(self, run: _Run, actor: Actor) -> None:
        """Every card tender authorised. A sale without one has nothing to do here and saves nothing: its
        step stays `reserved`, which recovery compensates (no money was taken)."""
        sale_id = run.sale_id
        tenders = run.tenders
        cards = [tender for tender in tenders if tender["kind"] == "card"]
        if not cards:
            return
        saved = False
        for tender in cards:
            if tender.get("payment_id"):
                await self._confirm_reader_payment(int(tender["payment_id"]), actor)
                continue
            key = f"sale:{sale_id}:attempt:{run.attempt}:tender:{tender['index']}:authorize"
            payment_id = await self._new_payment(sale_id, tender, tenders, key)
            assert self.gateway is not None
            request = AuthorizeRequest(
                amount_cents=int(tender["amount_cents"]), currency=run.currency, idempotency_key=key,
                reference=f"sale:{sale_id}", payment_method=tender["payment_method"],
                metadata={"sale_id": str(sale_id), "payment_id": str(payment_id), "store_id": str(run.store_id),
                          "request_id": actor.request_id or ""},
                request_id=actor.request_id,
            )  # fmt: skip
            try:
                result = await self.gateway.authorize(request)
            except PaymentError as exc:
                monitoring_metrics.card_payment("authorize", exc)
                await self._payment_failed(payment_id, exc)
                raise
            monitoring_metrics.card_payment("authorize", result.status)
            # The last answer and the step are saved together.
            saved = tender is cards[-1]
            await self._record_card(payment_id, result, step=(sale_id, "authorized") if saved else None)
        if not saved:
            await self._save_step(sale_id, "authorized")

    async def _confirm_reader_payment(self, payment_id: int, actor: Actor) -> None:
        async with self.database.sessionmaker() as session:
            payment = await session.get(Payment, payment_id)
            assert payment is not None
            reference, status = payment.provider_reference, payment.status
        if status == PaymentStatus.AUTHORIZED.value:
            return
        if reference is None or self.gateway is None:
            raise CardNotReady()
        result = await self.gateway.retrieve(reference, request_id=actor.request_id)
        if result.status is not CardStatus.AUTHORIZED:
            raise CardNotReady(details={"status": result.status.value})
        await self._record_card(payment_id, result)

    async def _capture(self, sale_id: int, actor: Actor) -> None:
        authorized = await self._card_payments(sale_id, PaymentStatus.AUTHORIZED)
        for payment_id, reference, amount in authorized:
            assert self.gateway is not None
            result = await self.gateway.capture(
                reference, amount, idempotency_key=f"payment:{payment_id}:capture", request_id=actor.request_id
            )
            monitoring_metrics.card_payment("capture", result.status)
            # The last answer and the step are saved together.
            last = payment_id == authorized[-1][0]
            await self._record_card(payment_id, result, step=(sale_id, "captured") if last else None)
        if not authorized:
            await self._save_step(sale_id, "captured")

    async def _finalize(
        self, sale_id: int, actor: Actor, run: _Run | None = None, respond: Respond | None = None
    ) -> Completed:
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, sale_id, None, lock=True)
            await inventory.commit_sale(
                session, sale.store_id, sales.stock_items(sale), reference=f"sale:{sale.id}", actor_id=sale.cashier_id
            )
            paid_with_points = 0
            for tender in sale.checkout_state["tenders"]:
                if tender["kind"] == "cash":
                    sale.change_cents = int(tender["change_cents"])
                    session.add(self._cash_payment(sale, tender))
                elif tender["kind"] == "loyalty":
                    paid_with_points += int(tender["amount_cents"])
                    sale.loyalty_points_redeemed += int(tender["points"])
                    session.add(Payment(
                        sale_id=sale.id, tender="loyalty", provider="loyalty", status=PaymentStatus.CAPTURED.value,
                        amount_cents=int(tender["amount_cents"]), captured_cents=int(tender["amount_cents"]),
                    ))  # fmt: skip
            if sale.customer_id is not None:
                if run is not None:
                    settings = run.store_settings
                else:
                    store = await session.get(Store, sale.store_id)
                    assert store is not None
                    settings = dict(store.settings or {})
                earned = customers.points_earned(sale.total_cents - paid_with_points, settings)
                await customers.earn(session, sale.customer_id, earned)
                sale.loyalty_points_earned = earned
            sale.status = SaleStatus.COMPLETED.value
            sale.checkout_step = "completed"
            sale.completed_at = utcnow()
            sale.checkout_state = {k: v for k, v in sale.checkout_state.items() if k != "lease_until"}
            # Written first, so that the cash and points payments just added are among the sale's tenders.
            await session.flush()
            payments = list(
                await session.scalars(select(Payment).where(Payment.sale_id == sale.id).order_by(Payment.id))
            )
            summary = sales.summary(sale) | {
                "tenders": [
                    {"tender": p.tender, "amount_cents": p.amount_cents, "brand": p.card_brand, "last4": p.card_last4}
                    for p in payments
                ],
                "lines": [
                    {"line_no": line.line_no, "product_id": line.product_id, "gtin": line.gtin,
                     "quantity": line.quantity, "units_per_pack": line.units_per_pack,
                     "unit_price_cents": line.override_price_cents or line.unit_price_cents,
                     "discount_cents": line.discount_cents, "tax_cents": line.tax_cents,
                     "tax_class": line.tax_class, "deposit_cents": line.deposit_cents,
                     "total_cents": line.line_total_cents, "age_restricted": line.age_restricted}
                    for line in sale.lines
                ],
            }  # fmt: skip
            await sales.announce(session, self.crypto, actor, sale, "completed", summary)
            # Nothing of these is generated by the database: the objects as written are the sale as stored.
            done = Completed(sale, payments)
            if respond is not None:
                await respond(session, done)
            await session.commit()
            monitoring_metrics.sale_completed()
            return done

    @staticmethod
    def _cash_payment(sale: Sale, tender: dict[str, Any]) -> Payment:
        amount = int(tender["amount_cents"])
        return Payment(
            sale_id=sale.id, tender="cash", provider="cash", status=PaymentStatus.CAPTURED.value,
            amount_cents=amount, captured_cents=amount, tendered_cents=int(tender["tendered_cents"]),
            change_cents=int(tender["change_cents"]),
        )  # fmt: skip

    # --- payments rows -----------------------------------------------------------------------------------

    async def _new_payment(self, sale_id: int, tender: dict[str, Any], tenders: list[dict[str, Any]], key: str) -> int:
        """The payment row, saved before the processor is called, and its id in the sale's tender plan."""
        async with self.database.sessionmaker() as session:
            sale = await _lock(session, sale_id)
            payment = Payment(
                sale_id=sale_id, tender="card", provider=self.gateway.name if self.gateway else "none",
                status=PaymentStatus.PENDING.value, amount_cents=int(tender["amount_cents"]), idempotency_key=key,
            )  # fmt: skip
            session.add(payment)
            await session.flush()
            tender["payment_id"] = payment.id
            sale.checkout_state = {**sale.checkout_state, "tenders": tenders}
            await session.commit()
            return payment.id

    async def _record_card(self, payment_id: int, result: CardResult, *, step: tuple[int, str] | None = None) -> None:
        """The processor's answer on the payment row; with `step` (sale id, step), that step of the sale too, in
        the same transaction."""
        async with self.database.sessionmaker() as session:
            if step is not None:
                # The sale's row before the payment's: the order of every transaction that locks both.
                sale = await _lock(session, step[0])
                sale.checkout_step = step[1]
                sale.checkout_state = {**sale.checkout_state, "lease_until": _lease()}
            payment = await session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
            assert payment is not None
            # Forward only: a webhook may already have moved the row further than this answer.
            payments.apply_card_result(payment, result)
            await session.commit()

    async def _payment_failed(self, payment_id: int, exc: PaymentError) -> None:
        async with self.database.sessionmaker() as session:
            payment = await session.get(Payment, payment_id)
            assert payment is not None
            # An unreachable processor may still have authorised: keep it pending for the compensation,
            # which asks again with the same idempotency key and voids what it finds.
            if not isinstance(exc, ProcessorUnavailable):
                payment.status = PaymentStatus.FAILED.value
            payment.failure_code = exc.code
            payment.failure_message = exc.message[:300]
            await session.commit()

    async def _card_payments(self, sale_id: int, status: PaymentStatus) -> list[tuple[int, str, int]]:
        async with self.database.sessionmaker() as session:
            rows = await session.execute(
                select(Payment.id, Payment.provider_reference, Payment.amount_cents)
                .where(Payment.sale_id == sale_id, Payment.tender == "card", Payment.kind == "payment",
                       Payment.status == status.value)
                .order_by(Payment.id)
            )  # fmt: skip
            return [(pid, ref, amount) for pid, ref, amount in rows if ref is not None]

    # --- compensation and recovery -------------------------------------------------------------------------

    async def _compensate(self, sale_id: int, actor: Actor, cause: BaseException) -> None:
        """Undo what the saga did, newest first, then reopen the sale with the reason."""
        monitoring_metrics.sale_failed(cause)
        try:
            await self._undo_payments(sale_id, actor)
            async with self.database.sessionmaker() as session:
                sale = await sales.load(session, sale_id, None, lock=True)
                if STEPS.index(sale.checkout_step or "started") >= STEPS.index("reserved"):
                    await inventory.release(
                        session, sale.store_id, sales.stock_items(sale), reference=f"sale:{sale.id}"
                    )
                    for tender in sale.checkout_state.get("tenders", []):
                        if tender["kind"] == "loyalty" and sale.customer_id is not None:
                            await customers.earn(session, sale.customer_id, int(tender["points"]))
                code = cause.code if isinstance(cause, PosError) else "checkout_failed"
                message = cause.message if isinstance(cause, PosError) else "The sale could not be completed."
                sale.status = SaleStatus.OPEN.value
                sale.checkout_step = None
                sale.failure_code = code
                sale.failure_message = message[:500]
                sale.checkout_state = {k: v for k, v in sale.checkout_state.items() if k not in ("lease_until",)}
                await audit.record(
                    session, self.crypto, actor, "sale.checkout_failed", store_id=sale.store_id,
                    target_type="sale", target_id=sale.id, details={"code": code, "message": message},
                )  # fmt: skip
                await session.commit()
        except Exception:
            # The sale stays `completing`; recovery will try again. Never hide the original failure.
            log.exception("compensation_failed", sale_id=sale_id)

    async def _undo_payments(self, sale_id: int, actor: Actor) -> None:
        assert_gateway = self.gateway
        if assert_gateway is None:
            return
        async with self.database.sessionmaker() as session:
            payments = list(
                await session.scalars(
                    select(Payment).where(
                        Payment.sale_id == sale_id, Payment.tender == "card", Payment.kind == "payment"
                    )
                )
            )
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, sale_id, None)
            # A payment the register took on the reader before completing stays the register's to use again or
            # cancel, unless this attempt captured it.
            keep = {t.get("payment_id") for t in sale.checkout_state.get("tenders", []) if t.get("preauthorized")}
        for payment in payments:
            if payment.id in keep and payment.status != PaymentStatus.CAPTURED.value:
                continue
            if payment.status == PaymentStatus.CAPTURED.value and payment.provider_reference:
                refund = await assert_gateway.refund(
                    payment.provider_reference, payment.captured_cents,
                    idempotency_key=f"payment:{payment.id}:compensate", request_id=actor.request_id,
                )  # fmt: skip
                await self._mark(payment.id, PaymentStatus.REFUNDED, refunded=refund.amount_cents)
            elif payment.status in (PaymentStatus.AUTHORIZED.value, PaymentStatus.PENDING.value):
                reference = payment.provider_reference
                if reference is None and payment.idempotency_key:
                    # The process stopped before the processor answered: ask again with the same key, which
                    # returns the authorisation that may exist (or the same decline) without charging twice.
                    reference = await self._replay_authorization(payment, actor)
                if reference is not None:
                    await assert_gateway.void(
                        reference, idempotency_key=f"payment:{payment.id}:void", request_id=actor.request_id
                    )
                await self._mark(payment.id, PaymentStatus.VOIDED)

    async def _replay_authorization(self, payment: Payment, actor: Actor) -> str | None:
        assert self.gateway is not None and payment.idempotency_key is not None
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, payment.sale_id, None)
            tender = next(
                (t for t in sale.checkout_state.get("tenders", []) if t.get("payment_id") == payment.id), None
            )
            store = await session.get(Store, sale.store_id)
            assert store is not None
        if tender is None or not tender.get("payment_method"):
            return None
        try:
            result = await self.gateway.authorize(
                AuthorizeRequest(
                    amount_cents=payment.amount_cents, currency=store.currency,
                    idempotency_key=payment.idempotency_key, reference=f"sale:{payment.sale_id}",
                    payment_method=tender["payment_method"], request_id=actor.request_id,
                    metadata={"sale_id": str(payment.sale_id), "payment_id": str(payment.id),
                              "store_id": str(sale.store_id)},
                )
            )  # fmt: skip
        except PaymentError:
            return None
        return result.reference

    async def _mark(self, payment_id: int, status: PaymentStatus, refunded: int = 0) -> None:
        async with self.database.sessionmaker() as session:
            payment = await session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
            assert payment is not None
            if refunded:
                # Totals only ever rise: Stripe's own refund notice may have been recorded first.
                payments.note_refunded(payment, payment.refunded_cents + refunded)
            payments.move(payment, status)
            await session.commit()

    async def recover(self, *, include_live: bool = False) -> list[tuple[int, str]]:
        """Resolve sales left `completing` by a stopped process: complete those whose money was captured,
        compensate the others. Sales whose lease has not run out belong to a live process and are left
        alone unless `include_live`."""
        async with self.database.sessionmaker() as session:
            candidates = list(
                await session.scalars(select(Sale).where(Sale.status == SaleStatus.COMPLETING.value).order_by(Sale.id))
            )
        now = utcnow()
        results: list[tuple[int, str]] = []
        for sale in candidates:
            lease = sale.checkout_state.get("lease_until")
            if not include_live and lease is not None and lease > now.isoformat():
                continue
            actor = Actor(
                user_id=sale.checkout_state.get("actor_id"), role=None, store_id=sale.store_id,
                register_id=sale.register_id, name="saga-recovery",
            )  # fmt: skip
            outcome = await self._recover_one(sale.id, sale.checkout_step or "started", actor)
            results.append((sale.id, outcome))
        return results

    async def _sync_with_processor(self, sale_id: int, actor: Actor) -> None:
        """Learn from the processor what really happened to each card payment before deciding anything: the
        process may have stopped after the processor acted and before the answer was saved."""
        if self.gateway is None:
            return
        async with self.database.sessionmaker() as session:
            payments = list(
                await session.scalars(
                    select(Payment).where(
                        Payment.sale_id == sale_id, Payment.tender == "card", Payment.kind == "payment",
                        Payment.status.in_([PaymentStatus.PENDING.value, PaymentStatus.AUTHORIZED.value]),
                    )
                )
            )  # fmt: skip
        for payment in payments:
            reference = payment.provider_reference or await self._replay_authorization(payment, actor)
            if reference is None:
                continue
            result = await self.gateway.retrieve(reference, request_id=actor.request_id)
            await self._record_card(payment.id, result)

    async def _recover_one(self, sale_id: int, step: str, actor: Actor) -> str:
        try:
            await self._sync_with_processor(sale_id, actor)
        except PaymentError:
            log.warning("recovery_processor_unavailable", sale_id=sale_id)
            return "deferred"
        captured_any = bool(await self._card_payments(sale_id, PaymentStatus.CAPTURED))
        # The register that sent the completion never got its answer and retries with the same key: the
        # answer is stored with the completion, or the key freed after the compensation, so that the retry is
        # answered (or runs again) instead of being told the key is in use.
        scope = completion_scope(actor.user_id, sale_id)
        try:
            if step == "captured" or (step == "authorized" and captured_any):
                # Money was taken: finish the sale (capturing anything still only authorised).
                await self._capture(sale_id, actor)
                await self._finalize(sale_id, actor, respond=_settle_keys(scope))
                return "completed"
            if step == "completed":
                return "completed"
        except Exception as exc:
            await self._compensate(sale_id, actor, exc)
            await self._release_keys(sale_id, scope)
            return "compensated"
        await self._compensate(sale_id, actor, _Interrupted())
        await self._release_keys(sale_id, scope)
        return "compensated"

    async def _release_keys(self, sale_id: int, scope: str) -> None:
        async with self.database.sessionmaker() as session:
            sale = await _lock(session, sale_id)
            if sale.status == SaleStatus.COMPLETING.value:
                return  # the compensation did not get through: recovery will try again, the key stays claimed
            await idempotency.release_in_flight(session, scope)
            await session.commit()


class _Interrupted(PosError):
    status_code = 409
    code = "checkout_interrupted"
    default_message = "The previous attempt to complete this sale was interrupted; nothing was charged. Tender again."


def _settle_keys(scope: str) -> Respond:
    async def settle(session: AsyncSession, done: Completed) -> None:
        await idempotency.settle_in_flight(session, scope, 200, done.answer())

    return settle


async def _lock(session: AsyncSession, sale_id: int) -> Sale:
    """The sale's row, locked, without its lines (for a step that only records its progress)."""
    sale = await session.scalar(
        select(Sale).where(Sale.id == sale_id).with_for_update().execution_options(populate_existing=True)
    )
    if sale is None:
        raise SaleNotFound(details={"sale_id": sale_id})
    return sale


def _lease() -> str:
    return (utcnow() + LEASE).isoformat()
