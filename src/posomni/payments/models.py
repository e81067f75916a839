from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin
from posomni.kit.time import utcnow


class Tender(enum.StrEnum):
    CASH = "cash"
    CARD = "card"
    LOYALTY = "loyalty"


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FAILED = "failed"


TENDER_VALUES = ", ".join(f"'{t.value}'" for t in Tender)
STATUS_VALUES = ", ".join(f"'{s.value}'" for s in PaymentStatus)


class Payment(IdMixin, TimestampMixin, Base):
    """One tender of a sale (or a refund of one). Card data is never stored: only the processor's reference,
    the brand and the last four digits."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"tender IN ({TENDER_VALUES})", name="tender_known"),
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="status_known"),
        CheckConstraint("kind IN ('payment', 'refund')", name="kind_known"),
        CheckConstraint(
            "amount_cents >= 0 AND captured_cents >= 0 AND refunded_cents >= 0 AND tendered_cents >= 0 "
            "AND change_cents >= 0",
            name="amounts_non_negative",
        ),
        CheckConstraint("refunded_cents <= captured_cents OR kind = 'refund'", name="refund_within_capture"),
        CheckConstraint("card_last4 IS NULL OR length(card_last4) = 4", name="last4_length"),
        Index("ix_payments_provider_reference", "provider", "provider_reference"),
    )

    sale_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("sales.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="payment")
    # For a refund: the payment it refunds.
    refund_of_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("payments.id", ondelete="RESTRICT"), default=None
    )
    tender: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    provider_reference: Mapped[str | None] = mapped_column(String(128), default=None)
    status: Mapped[str] = mapped_column(String(24), default=PaymentStatus.PENDING.value)
    # Money in integer cents.
    amount_cents: Mapped[int] = mapped_column(Integer)
    captured_cents: Mapped[int] = mapped_column(Integer, default=0)
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0)
    tendered_cents: Mapped[int] = mapped_column(Integer, default=0)
    change_cents: Mapped[int] = mapped_column(Integer, default=0)
    card_brand: Mapped[str | None] = mapped_column(String(32), default=None)
    card_last4: Mapped[str | None] = mapped_column(String(4), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    failure_code: Mapped[str | None] = mapped_column(String(64), default=None)
    failure_message: Mapped[str | None] = mapped_column(String(300), default=None)


class StripeEvent(Base):
    """A Stripe webhook event, stored once by its id before it is processed (a repeat delivery finds it).

    `payload` keeps only the fields processing needs (see `webhooks.digest`): never card data, not even the
    expiry month that Stripe's charge objects carry."""

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_unprocessed", "processed_at", "received_at"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    # Stripe's own creation time of the event (Unix seconds → UTC).
    created: Mapped[datetime | None] = mapped_column(default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    # applied | unchanged | no_payment | ignored
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PaymentDispute(IdMixin, TimestampMixin, Base):
    """A chargeback opened by the cardholder's bank (Stripe's `charge.dispute.created`)."""

    __tablename__ = "payment_disputes"
    __table_args__ = (
        UniqueConstraint("provider", "provider_dispute_id"),
        CheckConstraint("amount_cents >= 0", name="amount_non_negative"),
    )

    provider: Mapped[str] = mapped_column(String(32))
    provider_dispute_id: Mapped[str] = mapped_column(String(128))
    # The PaymentIntent; the payment row when we have one.
    provider_reference: Mapped[str | None] = mapped_column(String(128), default=None)
    payment_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("payments.id", ondelete="RESTRICT"), index=True, default=None
    )
    # Money in integer cents.
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    evidence_due_at: Mapped[datetime | None] = mapped_column(default=None)
