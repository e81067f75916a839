from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin
from posomni.kit.time import utcnow


class Shift(IdMixin, TimestampMixin, Base):
    """A register session: opened with a counted float, closed with counted cash (the Z report)."""

    __tablename__ = "shifts"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status_known"),
        CheckConstraint("opening_float_cents >= 0", name="opening_float_non_negative"),
        CheckConstraint("counted_cash_cents IS NULL OR counted_cash_cents >= 0", name="counted_non_negative"),
        # At most one open shift per register.
        Index(
            "uq_shifts_open_register",
            "register_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), index=True)
    register_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("registers.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    business_date: Mapped[date] = mapped_column(Date)
    opened_by: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"))
    opened_at: Mapped[datetime]
    opening_float_cents: Mapped[int] = mapped_column(Integer)
    closed_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    expected_cash_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    counted_cash_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    # Counted minus expected: positive is over, negative is short.
    over_short_cents: Mapped[int | None] = mapped_column(Integer, default=None)


class CashMovement(IdMixin, Base):
    """Cash into or out of a drawer outside a sale: paid-in, paid-out, and no-sale opens (amount 0)."""

    __tablename__ = "cash_movements"
    __table_args__ = (
        CheckConstraint("kind IN ('paid_in', 'paid_out', 'no_sale')", name="kind_known"),
        CheckConstraint("amount_cents >= 0", name="amount_non_negative"),
    )

    shift_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("shifts.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(300), default="")
    actor_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"))
    approved_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
