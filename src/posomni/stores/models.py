from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin

# Tax rates are fractions (0.06 = 6 %), kept exact with four decimals.
Rate = Numeric(7, 5)


class Store(IdMixin, TimestampMixin, Base):
    __tablename__ = "stores"
    __table_args__ = (
        CheckConstraint("state_tax_rate >= 0 AND state_tax_rate < 1", name="state_tax_rate_range"),
        CheckConstraint("local_tax_rate >= 0 AND local_tax_rate < 1", name="local_tax_rate_range"),
    )

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # IANA zone: every business date and sale-hours check uses the store's clock, never the server's.
    timezone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(2))
    county: Mapped[str] = mapped_column(String(80), default="")
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    state_tax_rate: Mapped[Decimal] = mapped_column(Rate)
    local_tax_rate: Mapped[Decimal] = mapped_column(Rate, default=Decimal(0))
    # Policies that vary per store (sale hours, negative stock, minimum clerk age ...), validated by the
    # stores service; a JSON document so adding a policy needs no migration.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Register(IdMixin, TimestampMixin, Base):
    __tablename__ = "registers"
    __table_args__ = (UniqueConstraint("store_id", "code"),)

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    # A paired card reader (Stripe Terminal reader id), when the register has one.
    card_reader_id: Mapped[str | None] = mapped_column(String(64), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
