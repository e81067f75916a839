"""Returns against a receipt, returns without one, and post-voids — each refunding through the tenders taken.

Like the checkout, a refund that calls the card processor is split in short transactions: the return (or the
void) and its refund rows are saved first, marked `completing`; then the processor is called with keys derived
from those rows; then everything else (stock, returned quantities, audit, back office) is written at once. A
stopped process leaves the return `completing`, and `finish_pending` replays the same refunds (the keys make
that safe) and writes the rest.

Refund order for a receipt return: cards first (in the order they were taken, up to what each has left), then
loyalty points, then cash. Converting a card payment into cash over the counter is how card fraud is cashed
out, so cash goes back only for what was paid in cash.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from posomni.auth.principal import Actor
from posomni.cache.service import CacheService
from posomni.customers import service as customers
from posomni.database import Database
from posomni.inventory import service as inventory
from posomni.kit.money import round_half_up
from posomni.kit.time import local_date, utcnow
from posomni.payments import service as payments
from posomni.payments.gateway import PaymentGateway
from posomni.payments.models import Payment, PaymentStatus
from posomni.sales import service as sales
from posomni.sales.errors import ReturnInvalid, VoidNotAllowed
from posomni.sales.models import Sale, SaleKind, SaleLine, SaleStatus
from posomni.security.crypto import EncryptionService
from posomni.shifts import service as shifts
from posomni.shifts.models import Shift
from posomni.stores import service as stores
from posomni.stores.models import Store


@dataclass(frozen=True)
class ReturnLineIn:
    original_line_id: int
    quantity: int
    restock: bool = True


def _share(amount: int, part: int, whole: int) -> int:
    return round_half_up(Decimal(amount) * part / whole)


def _refund_amounts(line: SaleLine, quantity: int) -> tuple[int, int, int, int]:
    """(subtotal, discount, tax, deposit) refunded for `quantity` of `line`: proportional, and exactly what is
    left when the last units come back, so partial returns add up to the original to the cent."""
    remaining = line.quantity - line.returned_quantity
    price = line.override_price_cents if line.override_price_cents is not None else line.unit_price_cents
    parts = (price * line.quantity, line.discount_cents, line.tax_cents, line.deposit_cents)
    if quantity == remaining:
        done = line.returned_quantity
        return tuple(p - _share(p, done, line.quantity) for p in parts)  # type: ignore[return-value]
    return tuple(_share(p, quantity, line.quantity) for p in parts)  # type: ignore[return-value]


class Refunds:
    def __init__(self, database: Database, crypto: EncryptionService, gateway: PaymentGateway | None) -> None:
        self.database = database
        self.crypto = crypto
        self.gateway = gateway

    async def return_items(
        self, actor: Actor, receipt_number: str, lines: list[ReturnLineIn], *, reason: str, register_id: int
    ) -> Sale:
        async with self.database.sessionmaker() as session:
            original = await sales.by_receipt(session, receipt_number, actor.store_id)
            if original.kind != SaleKind.SALE.value or original.status != SaleStatus.COMPLETED.value:
                raise ReturnInvalid("Only a completed sale can be returned.", details={"status": original.status})
            shift = await shifts.require_open_shift(session, register_id)
            store = await session.get(Store, original.store_id)
            assert store is not None
            by_id = {line.id: line for line in original.lines}
            refund = Sale(
                store_id=original.store_id, register_id=register_id, shift_id=shift.id, cashier_id=actor.user_id,
                customer_id=original.customer_id, kind=SaleKind.RETURN.value, original_sale_id=original.id,
                receipt_number=sales.receipt_number(store, await sales.next_number(session, store.id, "receipt")),
                business_date=local_date(store.timezone), status=SaleStatus.COMPLETING.value,
                checkout_state={"reason": reason, "original_sale_id": original.id},
            )  # fmt: skip
            session.add(refund)
            await session.flush()
            set_committed_value(refund, "lines", [])
            seen: set[int] = set()
            for number, item in enumerate(lines, start=1):
                line = by_id.get(item.original_line_id)
                if line is None or item.original_line_id in seen:
                    raise ReturnInvalid("A returned line is not on that receipt (or is listed twice).")
                seen.add(item.original_line_id)
                if not 1 <= item.quantity <= line.quantity - line.returned_quantity:
                    raise ReturnInvalid(
                        "More than was sold (or already returned).",
                        details={"line_id": line.id, "returnable": line.quantity - line.returned_quantity},
                    )
                subtotal, discount, tax, deposit = _refund_amounts(line, item.quantity)
                refund.lines.append(SaleLine(
                    sale_id=refund.id, line_no=number, product_id=line.product_id,
                    stock_product_id=line.stock_product_id, gtin=line.gtin, description=line.description,
                    quantity=item.quantity, units_per_pack=line.units_per_pack, unit_price_cents=line.unit_price_cents,
                    override_price_cents=line.override_price_cents, discount_cents=discount, tax_class=line.tax_class,
                    tax_cents=tax, deposit_cents=deposit, line_total_cents=subtotal - discount + tax + deposit,
                    age_restricted=line.age_restricted, min_age=line.min_age, original_line_id=line.id,
                    restock=item.restock,
                ))  # fmt: skip
            if not refund.lines:
                raise ReturnInvalid("Choose what is returned.")
            refund.subtotal_cents = sum(
                (line.override_price_cents if line.override_price_cents is not None else line.unit_price_cents)
                * line.quantity
                for line in refund.lines
            )
            refund.discount_cents = sum(line.discount_cents for line in refund.lines)
            refund.tax_cents = sum(line.tax_cents for line in refund.lines)
            refund.deposit_cents = sum(line.deposit_cents for line in refund.lines)
            refund.total_cents = sum(line.line_total_cents for line in refund.lines)
            await self._plan_refunds(session, original, refund, refund.total_cents)
            await session.commit()
            refund_id = refund.id
        await self._run_refunds(refund_id, actor)
        return await self._finish(refund_id, actor)

    async def _plan_refunds(self, session: AsyncSession, original: Sale, refund: Sale, amount: int) -> None:
        """Refund rows against the original tenders, saved before any processor is called."""
        payments = list(
            await session.scalars(
                select(Payment).where(Payment.sale_id == original.id, Payment.kind == "payment").order_by(Payment.id)
            )
        )
        previous = list(
            await session.scalars(
                select(Payment).where(
                    Payment.refund_of_id.in_([p.id for p in payments] or [-1]), Payment.kind == "refund"
                )
            )
        )
        already = {p.id: 0 for p in payments}
        for row in previous:
            if row.refund_of_id is not None and row.status != PaymentStatus.FAILED.value:
                already[row.refund_of_id] += row.amount_cents
        order = {"card": 0, "loyalty": 1, "cash": 2}
        left = amount
        for payment in sorted(payments, key=lambda p: (order.get(p.tender, 3), p.id)):
            if left <= 0:
                break
            if payment.status not in (PaymentStatus.CAPTURED.value, PaymentStatus.PARTIALLY_REFUNDED.value):
                continue
            available = payment.captured_cents - already[payment.id]
            take = min(left, available)
            if take <= 0:
                continue
            session.add(Payment(
                sale_id=refund.id, kind="refund", refund_of_id=payment.id, tender=payment.tender,
                provider=payment.provider, status=PaymentStatus.PENDING.value, amount_cents=take,
                card_brand=payment.card_brand, card_last4=payment.card_last4,
            ))  # fmt: skip
            left -= take
        if left > 0:
            raise ReturnInvalid("The refund is larger than what was paid.", details={"missing_cents": left})
        await session.flush()

    async def _run_refunds(self, refund_sale_id: int, actor: Actor) -> None:
        async with self.database.sessionmaker() as session:
            rows = list(
                await session.scalars(
                    select(Payment).where(
                        Payment.sale_id == refund_sale_id, Payment.status == PaymentStatus.PENDING.value
                    )
                )
            )
            originals = {p.id: p for p in await session.scalars(
                select(Payment).where(Payment.id.in_([r.refund_of_id for r in rows if r.refund_of_id] or [-1]))
            )}  # fmt: skip
        for row in rows:
            if row.tender != "card":
                continue
            original = originals[row.refund_of_id] if row.refund_of_id else None
            if original is None or original.provider_reference is None or self.gateway is None:
                continue
            result = await self.gateway.refund(
                original.provider_reference, row.amount_cents, idempotency_key=f"payment:{row.id}:refund",
                request_id=actor.request_id,
            )  # fmt: skip
            async with self.database.sessionmaker() as session:
                fresh = await session.scalar(select(Payment).where(Payment.id == row.id).with_for_update())
                assert fresh is not None
                fresh.provider_reference = result.reference
                # A refund row is ours alone (pending → refunded); the processor's notices update the payment.
                fresh.status = PaymentStatus.REFUNDED.value
                await session.commit()

    async def _finish(self, refund_sale_id: int, actor: Actor) -> Sale:
        async with self.database.sessionmaker() as session:
            refund = await sales.load(session, refund_sale_id, None, lock=True)
            if refund.status == SaleStatus.COMPLETED.value:
                return refund
            original = await sales.load(session, refund.original_sale_id or 0, None, lock=True)
            rows = list(await session.scalars(select(Payment).where(Payment.sale_id == refund.id)))
            for row in rows:
                original_payment = await session.get(Payment, row.refund_of_id) if row.refund_of_id else None
                if row.tender != "card":
                    row.status = PaymentStatus.REFUNDED.value
                if row.tender == "loyalty" and refund.customer_id is not None:
                    store = await session.get(Store, refund.store_id)
                    assert store is not None
                    points = customers.points_for_amount(row.amount_cents, store.settings or {})
                    await customers.earn(session, refund.customer_id, points)
                if original_payment is not None:
                    await self._note_refunds(session, original_payment)
            by_id = {line.id: line for line in original.lines}
            restock: list[tuple[int, int]] = []
            for line in refund.lines:
                source = by_id[line.original_line_id or 0]
                source.returned_quantity += line.quantity
                if line.restock:
                    restock.append((line.stock_product_id, line.quantity * line.units_per_pack))
            if restock:
                totals: dict[int, int] = {}
                for product_id, units in restock:
                    totals[product_id] = totals.get(product_id, 0) + units
                await inventory.restock(
                    session, refund.store_id, sorted(totals.items()), reason="return",
                    reference=f"return:{refund.id}", actor_id=actor.user_id,
                )  # fmt: skip
            refund.status = SaleStatus.COMPLETED.value
            refund.completed_at = utcnow()
            details = sales.summary(refund) | {
                "original_receipt": original.receipt_number,
                "reason": refund.checkout_state.get("reason"),
                "lines": [{"product_id": line.product_id, "quantity": line.quantity, "restock": line.restock,
                           "total_cents": line.line_total_cents} for line in refund.lines],
                "refunds": [{"tender": r.tender, "amount_cents": r.amount_cents} for r in rows],
            }  # fmt: skip
            await sales.announce(session, self.crypto, actor, refund, "returned", details)
            await session.commit()
            return await sales.load(session, refund.id, None)

    async def void_sale(self, actor: Actor, sale_id: int, *, reason: str, manager_id: int) -> Sale:
        """Post-void of today's completed sale: every tender refunded, all stock back, the sale marked voided."""
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, sale_id, actor.store_id, lock=True)
            if sale.status == SaleStatus.VOIDED.value:
                return sale
            store = await session.get(Store, sale.store_id)
            assert store is not None
            returned = any(line.returned_quantity for line in sale.lines)
            if (
                sale.kind != SaleKind.SALE.value
                or sale.status != SaleStatus.COMPLETED.value
                or returned
                or sale.business_date != local_date(store.timezone)
            ):
                raise VoidNotAllowed(details={"status": sale.status, "business_date": sale.business_date.isoformat()})
            if sale.checkout_step != "voiding":
                await self._check_void_drawer(session, actor, sale)
                sale.checkout_step = "voiding"
                sale.checkout_state = {**sale.checkout_state, "void_reason": reason, "voided_by": manager_id}
                await self._plan_refunds(session, sale, sale, sale.total_cents)
            await session.commit()
        await self._run_refunds(sale_id, actor)
        async with self.database.sessionmaker() as session:
            sale = await sales.load(session, sale_id, None, lock=True)
            store = await session.get(Store, sale.store_id)
            assert store is not None
            for row in await session.scalars(
                select(Payment).where(Payment.sale_id == sale.id, Payment.kind == "refund",
                                      Payment.status == PaymentStatus.PENDING.value)
            ):  # fmt: skip
                row.status = PaymentStatus.REFUNDED.value
                if row.tender == "loyalty" and sale.customer_id is not None:
                    points = customers.points_for_amount(row.amount_cents, store.settings or {})
                    await customers.earn(session, sale.customer_id, points)
            for payment in await session.scalars(
                select(Payment).where(Payment.sale_id == sale.id, Payment.kind == "payment")
            ):
                await self._note_refunds(session, payment)
            if sale.customer_id is not None and sale.loyalty_points_earned:
                await customers.redeem_up_to(session, sale.customer_id, sale.loyalty_points_earned)
            await inventory.restock(
                session,
                sale.store_id,
                sales.stock_items(sale),
                reason="return",
                reference=f"void:{sale.id}",
                actor_id=actor.user_id,
            )
            sale.status = SaleStatus.VOIDED.value
            sale.checkout_step = "voided"
            sale.voided_at = utcnow()
            sale.voided_by = manager_id
            details = sales.summary(sale) | {"reason": reason, "manager_id": manager_id}
            await sales.announce(session, self.crypto, actor, sale, "voided", details)
            await session.commit()
            return await sales.load(session, sale.id, None)

    @staticmethod
    async def _check_void_drawer(session: AsyncSession, actor: Actor, sale: Sale) -> None:
        """A post-void gives the money back from the drawer that took it, in the shift that took it: at the
        sale's own register, while the sale's shift is open. Otherwise the cash would leave one drawer and be
        counted against another, and a closed Z report would change after it was printed; a return (which
        belongs to the shift it is made in) is the way then."""
        if actor.register_id is not None and actor.register_id != sale.register_id:
            raise VoidNotAllowed(
                "A sale is voided at the register it was sold on; at this register, take it back as a return.",
                details={"sale_register_id": sale.register_id, "register_id": actor.register_id},
            )
        if sale.shift_id is None:
            return
        shift = await session.get(Shift, sale.shift_id)
        if shift is not None and shift.status != "open":
            raise VoidNotAllowed(
                "The shift of this sale is closed, so its report is final; take the sale back as a return.",
                details={"shift_id": sale.shift_id, "shift_status": shift.status},
            )

    @staticmethod
    async def _note_refunds(session: AsyncSession, payment: Payment) -> None:
        """The payment's refunded total is the sum of its refund rows; it only ever rises (a processor's refund
        notice may have recorded it first)."""
        await session.flush()
        total = await session.scalar(
            select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
                Payment.refund_of_id == payment.id, Payment.kind == "refund",
                Payment.status == PaymentStatus.REFUNDED.value,
            )
        )  # fmt: skip
        payments.note_refunded(payment, int(total or 0))

    async def return_without_receipt(
        self,
        actor: Actor,
        items: list[tuple[str, int, bool]],
        *,
        reason: str,
        register_id: int,
        manager_id: int | None,
        cache: CacheService,
    ) -> Sale:
        """Items brought back with no receipt, by store policy (`returns_without_receipt`: refuse, manager,
        allow). Priced at today's shelf price with today's tax, refunded in cash only (there is no tender to
        refund to), restocked unless damaged. One transaction: no processor is involved."""
        async with self.database.sessionmaker() as session:
            shift = await shifts.require_open_shift(session, register_id)
            store = await session.get(Store, shift.store_id)
            assert store is not None
            policy = stores.policies_of(store).returns_without_receipt
            if policy == "refuse":
                raise ReturnInvalid("This store takes returns only with a receipt.", details={"policy": policy})
            if policy == "manager" and manager_id is None:
                raise ReturnInvalid("A manager must approve a return without a receipt.", details={"policy": policy})
            refund = Sale(
                store_id=store.id, register_id=register_id, shift_id=shift.id, cashier_id=actor.user_id,
                kind=SaleKind.RETURN.value, status=SaleStatus.OPEN.value,
                receipt_number=sales.receipt_number(store, await sales.next_number(session, store.id, "receipt")),
                business_date=local_date(store.timezone),
                checkout_state={"reason": reason, "without_receipt": True, "approved_by": manager_id},
            )  # fmt: skip
            session.add(refund)
            await session.flush()
            set_committed_value(refund, "lines", [])
            restocks: dict[int, bool] = {}
            for code, quantity, restock in items:
                line = await sales.add_item(session, cache, refund, code=code, quantity=quantity)
                restocks[line.id] = restocks.get(line.id, True) and restock
            for line in refund.lines:
                line.restock = restocks.get(line.id, True)
            refund.status = SaleStatus.COMPLETED.value
            refund.completed_at = utcnow()
            session.add(Payment(
                sale_id=refund.id, kind="refund", tender="cash", provider="cash",
                status=PaymentStatus.REFUNDED.value, amount_cents=refund.total_cents,
            ))  # fmt: skip
            totals: dict[int, int] = {}
            for line in refund.lines:
                if line.restock:
                    totals[line.stock_product_id] = (
                        totals.get(line.stock_product_id, 0) + line.quantity * line.units_per_pack
                    )
            if totals:
                await inventory.restock(
                    session, store.id, sorted(totals.items()), reason="return", reference=f"return:{refund.id}",
                    actor_id=actor.user_id,
                )  # fmt: skip
            details = sales.summary(refund) | {
                "without_receipt": True, "reason": reason, "approved_by": manager_id,
                "lines": [{"product_id": line.product_id, "quantity": line.quantity, "restock": line.restock,
                           "total_cents": line.line_total_cents} for line in refund.lines],
                "refunds": [{"tender": "cash", "amount_cents": refund.total_cents}],
            }  # fmt: skip
            await sales.announce(session, self.crypto, actor, refund, "returned", details)
            await session.commit()
            return await sales.load(session, refund.id, None)

    async def finish_pending(self) -> list[int]:
        """Returns and voids left half-done by a stopped process: replay their refunds and finish them."""
        async with self.database.sessionmaker() as session:
            returns = list(
                await session.scalars(
                    select(Sale.id).where(
                        Sale.kind == SaleKind.RETURN.value, Sale.status == SaleStatus.COMPLETING.value
                    )
                )
            )
            voids = list(
                await session.scalars(
                    select(Sale).where(Sale.status == SaleStatus.COMPLETED.value, Sale.checkout_step == "voiding")
                )
            )
        finished = []
        for refund_id in returns:
            actor = Actor.system("return-recovery")
            await self._run_refunds(refund_id, actor)
            await self._finish(refund_id, actor)
            finished.append(refund_id)
        for sale in voids:
            actor = Actor(user_id=None, role=None, store_id=sale.store_id, name="void-recovery")
            await self.void_sale(
                actor, sale.id, reason=str(sale.checkout_state.get("void_reason", "")),
                manager_id=int(sale.checkout_state.get("voided_by") or 0),
            )  # fmt: skip
            finished.append(sale.id)
        return finished
