from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin


class Customer(IdMixin, TimestampMixin, Base):
    __tablename__ = "customers"
    __table_args__ = (CheckConstraint("loyalty_points >= 0", name="loyalty_points_non_negative"),)

    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    loyalty_card: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    # Date of birth is personal data: stored only encrypted (AES-GCM token bound to this row).
    date_of_birth_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    age_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    age_verified_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None
    )
    age_verified_at: Mapped[datetime | None] = mapped_column(default=None)
    age_verified_method: Mapped[str | None] = mapped_column(String(16), default=None)
    loyalty_points: Mapped[int] = mapped_column(Integer, default=0)


def dob_aad(customer_id: int) -> str:
    return f"customer:{customer_id}:dob"
