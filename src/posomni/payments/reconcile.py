"""Reconciliation: our card payments against the processor's record of a store's business day.

Every mismatch is reported: a payment the processor has and we do not (`missing_locally`), one we have and it
does not (`missing_at_processor`), a different status (`status_differs`) or amount (`amount_differs`), and an
authorisation never captured although its sale completed (`authorized_not_captured`). Nothing is corrected
automatically except orphans: authorisations older than a configurable age, still held at the processor,
whose sale is not completing or completed (a crash between authorise and capture, a sale abandoned after
the card was taken). Those are voided, so the customer's hold is released, and the void is audited. The
orchestration, which commits between its steps, is `tasks.reconcile`; this module holds the rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.kit.time import zone
from posomni.payments.gateway import CardStatus
from posomni.payments.models import Payment, PaymentStatus
from posomni.sales.models import Sale, SaleStatus
from posomni.stores.models import Store

S = PaymentStatus
# The local statuses that agree with each processor status.
AGREEING: dict[CardStatus, frozenset[str]] = {
    CardStatus.PENDING: frozenset({S.PENDING.value}),
    CardStatus.AUTHORIZED: frozenset({S.AUTHORIZED.value}),
    CardStatus.CAPTURED: frozenset({S.CAPTURED.value, S.PARTIALLY_REFUNDED.value, S.REFUNDED.value}),
    # An attempt abandoned after a decline is cancelled at the processor; both ends say "no money moved".
    CardStatus.VOIDED: frozenset({S.VOIDED.value, S.FAILED.value}),
    CardStatus.DECLINED: frozenset({S.FAILED.value}),
}
SALE_KEEPS_AUTHORIZATION = frozenset({SaleStatus.COMPLETING.value, SaleStatus.COMPLETED.value})


@dataclass(frozen=True)
class ProcessorPayment:
    """One payment as the processor lists it. Amounts in cents."""

    reference: str
    status: CardStatus
    amount_cents: int
    captured_cents: int
    refunded_cents: int
    currency: str
    created_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def sale_id(self) -> int | None:
        raw = self.metadata.get("sale_id") or self.metadata.get("reference", "").removeprefix("sale:")
        return int(raw) if raw.isdigit() else None


@runtime_checkable
class PaymentLister(Protocol):
    """A processor that can list its payments (Stripe); the simulated processor cannot be reconciled."""

    name: str

    async def list_payments(self, *, created_from: datetime, created_to: datetime) -> list[ProcessorPayment]: ...


class MismatchKind(enum.StrEnum):
    MISSING_LOCALLY = "missing_locally"
    MISSING_AT_PROCESSOR = "missing_at_processor"
    STATUS_DIFFERS = "status_differs"
    AMOUNT_DIFFERS = "amount_differs"
    AUTHORIZED_NOT_CAPTURED = "authorized_not_captured"


@dataclass(frozen=True)
class Mismatch:
    kind: MismatchKind
    reference: str | None
    payment_id: int | None
    sale_id: int | None
    local: str | None
    processor: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "reference": self.reference,
            "payment_id": self.payment_id,
            "sale_id": self.sale_id,
            "local": self.local,
            "processor": self.processor,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Orphan:
    reference: str
    payment_id: int | None
    sale_id: int | None
    amount_cents: int
    authorized_at: datetime
    voided: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "payment_id": self.payment_id,
            "sale_id": self.sale_id,
            "amount_cents": self.amount_cents,
            "authorized_at": self.authorized_at.isoformat(),
            "voided": self.voided,
            "error": self.error,
        }


@dataclass
class ReconciliationReport:
    store_code: str
    business_date: date
    window_start: datetime
    window_end: datetime
    local_count: int = 0
    processor_count: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches and not any(o.error for o in self.orphans)

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.store_code,
            "business_date": self.business_date.isoformat(),
            "window": [self.window_start.isoformat(), self.window_end.isoformat()],
            "local_payments": self.local_count,
            "processor_payments": self.processor_count,
            "mismatches": [m.as_dict() for m in self.mismatches],
            "orphans": [o.as_dict() for o in self.orphans],
        }


def business_day_window(timezone: str, day: date) -> tuple[datetime, datetime]:
    """[local midnight of `day`, local midnight of the next day) of the store, as aware datetimes."""
    tz = zone(timezone)
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def compare(payment: Payment, found: ProcessorPayment) -> list[Mismatch]:
    """How a local payment row and the processor's record of it disagree (empty when they agree)."""
    mismatches: list[Mismatch] = []

    def add(kind: MismatchKind, local: str, processor: str, detail: str) -> None:
        mismatches.append(Mismatch(kind, found.reference, payment.id, payment.sale_id, local, processor, detail))

    if payment.status not in AGREEING[found.status]:
        add(MismatchKind.STATUS_DIFFERS, payment.status, found.status.value, "the statuses disagree")
    if payment.amount_cents != found.amount_cents:
        add(
            MismatchKind.AMOUNT_DIFFERS,
            str(payment.amount_cents),
            str(found.amount_cents),
            "authorised amount (cents)",
        )
    if found.status is CardStatus.CAPTURED and payment.captured_cents != found.captured_cents:
        add(
            MismatchKind.AMOUNT_DIFFERS,
            str(payment.captured_cents),
            str(found.captured_cents),
            "captured amount (cents)",
        )
    if payment.refunded_cents != found.refunded_cents:
        add(
            MismatchKind.AMOUNT_DIFFERS,
            str(payment.refunded_cents),
            str(found.refunded_cents),
            "refunded amount (cents)",
        )
    return mismatches


def missing_locally(found: ProcessorPayment) -> Mismatch:
    detail = f"{found.amount_cents} cents, created {found.created_at.isoformat()}"
    return Mismatch(
        MismatchKind.MISSING_LOCALLY, found.reference, None, found.sale_id, None, found.status.value, detail
    )


def missing_at_processor(payment: Payment) -> Mismatch:
    return Mismatch(
        MismatchKind.MISSING_AT_PROCESSOR,
        payment.provider_reference,
        payment.id,
        payment.sale_id,
        payment.status,
        None,
        "the processor does not know this payment",
    )


async def stores(session: AsyncSession, store_code: str | None) -> list[Store]:
    query = select(Store).where(Store.is_active.is_(True)).order_by(Store.id)
    if store_code is not None:
        query = select(Store).where(Store.code == store_code)
    return list(await session.scalars(query))


async def local_payments(
    session: AsyncSession, provider: str, store_id: int, start: datetime, end: datetime
) -> list[Payment]:
    """The store's card payments (not refunds) created in [start, end) and sent to `provider`."""
    query = (
        select(Payment)
        .join(Sale, Sale.id == Payment.sale_id)
        .where(
            Sale.store_id == store_id,
            Payment.provider == provider,
            Payment.tender == "card",
            Payment.kind == "payment",
            Payment.created_at >= start,
            Payment.created_at < end,
        )
        .order_by(Payment.id)
    )
    return list(await session.scalars(query))


async def payments_by_reference(session: AsyncSession, provider: str, references: list[str]) -> dict[str, Payment]:
    if not references:
        return {}
    rows = await session.scalars(
        select(Payment).where(
            Payment.provider == provider, Payment.kind == "payment", Payment.provider_reference.in_(references)
        )
    )
    return {p.provider_reference: p for p in rows if p.provider_reference is not None}


async def stale_authorizations(
    session: AsyncSession, provider: str, store_id: int, older_than: datetime
) -> list[Payment]:
    """The store's card payments still authorised (never captured nor voided) and authorised before
    `older_than`, whatever their day."""
    query = (
        select(Payment)
        .join(Sale, Sale.id == Payment.sale_id)
        .where(
            Sale.store_id == store_id,
            Payment.provider == provider,
            Payment.kind == "payment",
            Payment.status == S.AUTHORIZED.value,
            Payment.created_at < older_than,
        )
        .order_by(Payment.id)
    )
    return list(await session.scalars(query))


async def sale_statuses(session: AsyncSession, sale_ids: set[int]) -> dict[int, tuple[str, int]]:
    """sale id → (status, store id)."""
    if not sale_ids:
        return {}
    rows = await session.execute(select(Sale.id, Sale.status, Sale.store_id).where(Sale.id.in_(sale_ids)))
    return {sale_id: (status, store_id) for sale_id, status, store_id in rows}
