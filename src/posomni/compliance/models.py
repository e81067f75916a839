from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin
from posomni.kit.time import utcnow


class ComplianceEvent(IdMixin, Base):
    """One age/ID decision. Date of birth and expiry are stored only encrypted; the raw barcode, names and
    address are not stored."""

    __tablename__ = "compliance_events"
    __table_args__ = (
        CheckConstraint("method IN ('scan', 'manual', 'override', 'profile')", name="method_known"),
        CheckConstraint("result IN ('passed', 'refused', 'overridden')", name="result_known"),
        Index("ix_compliance_events_store_time", "store_id", "occurred_at"),
    )

    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    business_date: Mapped[date] = mapped_column(Date)
    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"))
    register_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("registers.id", ondelete="RESTRICT"), default=None
    )
    clerk_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"))
    customer_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("customers.id", ondelete="RESTRICT"), default=None
    )
    sale_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("sales.id", ondelete="RESTRICT"), index=True, default=None
    )
    method: Mapped[str] = mapped_column(String(16))
    document_type: Mapped[str | None] = mapped_column(String(16), default=None)
    jurisdiction: Mapped[str | None] = mapped_column(String(8), default=None)
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    override_manager_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None
    )
    override_reason: Mapped[str | None] = mapped_column(String(300), default=None)
    dob_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    expiry_encrypted: Mapped[str | None] = mapped_column(Text, default=None)


def dob_aad(event_id: int) -> str:
    return f"compliance:{event_id}:dob"


def expiry_aad(event_id: int) -> str:
    return f"compliance:{event_id}:expiry"
