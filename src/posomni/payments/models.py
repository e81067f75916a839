from __future__ import annotations

import enum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin


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
