from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin
from posomni.kit.time import utcnow

# How a decision was reached. `tender` is the checkout's own check at tender time (sale hours, clerk age).
EVENT_METHODS = ("scan", "manual", "override", "profile", "tender")
EVENT_RESULTS = ("passed", "refused", "overridden")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ComplianceEvent(IdMixin, Base):
    """One age/ID decision. Date of birth and expiry are stored only encrypted; the raw barcode, names and
    address are not stored."""

    __tablename__ = "compliance_events"
    __table_args__ = (
        CheckConstraint(_one_of("method", EVENT_METHODS), name="method_known"),
        CheckConstraint(_one_of("result", EVENT_RESULTS), name="result_known"),
        Index("ix_compliance_events_store_time", "store_id", "occurred_at"),
        Index("ix_compliance_events_store_business_date", "store_id", "business_date"),
        # One override per refusal, even when two managers approve at the same moment.
        Index("ix_compliance_events_overrides_event_id", "overrides_event_id", unique=True),
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
    # The minimum age the check was made against: the checkout accepts a check only when it covers the
    # highest minimum age among the sale's lines.
    checked_min_age: Mapped[int | None] = mapped_column(Integer, default=None)
    # An override names the refused event it unlocks; every override is an event of its own.
    overrides_event_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("compliance_events.id", ondelete="RESTRICT"), default=None
    )


def dob_aad(event_id: int) -> str:
    return f"compliance:{event_id}:dob"


def expiry_aad(event_id: int) -> str:
    return f"compliance:{event_id}:expiry"
