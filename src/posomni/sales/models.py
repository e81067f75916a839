from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from posomni.kit.db import Base, BigIntId, IdMixin, TimestampMixin


class SaleStatus(enum.StrEnum):
    OPEN = "open"
    SUSPENDED = "suspended"
    # The checkout saga is running; `checkout_step` says how far it got.
    COMPLETING = "completing"
    COMPLETED = "completed"
    VOIDED = "voided"
    CANCELLED = "cancelled"


class SaleKind(enum.StrEnum):
    SALE = "sale"
    RETURN = "return"


STATUS_VALUES = ", ".join(f"'{s.value}'" for s in SaleStatus)
KIND_VALUES = ", ".join(f"'{k.value}'" for k in SaleKind)


class Sale(IdMixin, TimestampMixin, Base):
    """A transaction at a register. It lives on the server from the first scan, so a register can resume it."""

    __tablename__ = "sales"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="status_known"),
        CheckConstraint(f"kind IN ({KIND_VALUES})", name="kind_known"),
        CheckConstraint(
            "subtotal_cents >= 0 AND discount_cents >= 0 AND tax_cents >= 0 AND deposit_cents >= 0 "
            "AND total_cents >= 0",
            name="amounts_non_negative",
        ),
        Index("ix_sales_store_business_date", "store_id", "business_date"),
        Index("ix_sales_status", "status"),
    )

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"))
    register_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("registers.id", ondelete="RESTRICT"))
    shift_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("shifts.id", ondelete="RESTRICT"), index=True, default=None
    )
    cashier_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"))
    customer_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("customers.id", ondelete="RESTRICT"), default=None
    )
    kind: Mapped[str] = mapped_column(String(16), default=SaleKind.SALE.value)
    # A return points at the sale it returns.
    original_sale_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("sales.id", ondelete="RESTRICT"), index=True, default=None
    )
    receipt_number: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=SaleStatus.OPEN.value)
    business_date: Mapped[date] = mapped_column(Date)
    # Money in integer cents. For a return these are the amounts given back (positive numbers).
    subtotal_cents: Mapped[int] = mapped_column(Integer, default=0)
    discount_cents: Mapped[int] = mapped_column(Integer, default=0)
    tax_cents: Mapped[int] = mapped_column(Integer, default=0)
    deposit_cents: Mapped[int] = mapped_column(Integer, default=0)
    total_cents: Mapped[int] = mapped_column(Integer, default=0)
    age_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    age_verified_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None
    )
    id_scanned: Mapped[bool] = mapped_column(Boolean, default=False)
    # Checkout saga progress, persisted after every step so a crashed process can be recovered.
    checkout_step: Mapped[str | None] = mapped_column(String(32), default=None)
    checkout_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Manager's discount on the whole sale (an amount or a percentage), as entered; the pricing engine turns it
    # into cents on the lines.
    manual_discount_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    manual_discount_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 4), default=None)
    discount_approved_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None
    )
    change_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    loyalty_points_earned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    loyalty_points_redeemed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failure_code: Mapped[str | None] = mapped_column(String(64), default=None)
    failure_message: Mapped[str | None] = mapped_column(String(500), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    voided_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    # Optimistic concurrency: every change bumps it, so two registers cannot overwrite each other's edit.
    version: Mapped[int] = mapped_column(Integer, default=1)

    lines: Mapped[list[SaleLine]] = relationship(
        back_populates="sale", lazy="raise", order_by="SaleLine.line_no", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as a plain dict)


class SaleLine(IdMixin, Base):
    __tablename__ = "sale_lines"
    __table_args__ = (
        UniqueConstraint("sale_id", "line_no"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("units_per_pack >= 1", name="units_per_pack_positive"),
        CheckConstraint("returned_quantity >= 0 AND returned_quantity <= quantity", name="returned_within_sold"),
        CheckConstraint(
            "unit_price_cents >= 0 AND discount_cents >= 0 AND tax_cents >= 0 AND deposit_cents >= 0",
            name="amounts_non_negative",
        ),
        Index("ix_sale_lines_product", "product_id"),
    )

    sale_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("sales.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"))
    # Stock is taken from the base product: quantity * units_per_pack base units.
    stock_product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"))
    gtin: Mapped[str | None] = mapped_column(String(14), default=None)
    description: Mapped[str] = mapped_column(String(250))
    quantity: Mapped[int] = mapped_column(Integer)
    units_per_pack: Mapped[int] = mapped_column(Integer, default=1)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    # Manager price override, per unit, when one was made.
    override_price_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    # Computed by the pricing engine: promotion and manual parts, and their sum.
    promotion_discount_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    discount_cents: Mapped[int] = mapped_column(Integer, default=0)
    # Manager's line discount as entered (an amount for the line, or a percentage).
    manual_discount_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    manual_discount_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 4), default=None)
    approved_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    tax_class: Mapped[str] = mapped_column(String(32))
    tax_cents: Mapped[int] = mapped_column(Integer, default=0)
    deposit_cents: Mapped[int] = mapped_column(Integer, default=0)
    line_total_cents: Mapped[int] = mapped_column(Integer, default=0)
    age_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    min_age: Mapped[int | None] = mapped_column(Integer, default=None)
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)
    # For a return line: the line of the original sale it returns.
    original_line_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("sale_lines.id", ondelete="RESTRICT"), default=None
    )
    restock: Mapped[bool] = mapped_column(Boolean, default=True)

    sale: Mapped[Sale] = relationship(back_populates="lines", lazy="raise")


class StoreCounter(Base):
    """Per-store sequences (receipt numbers): incremented under a row lock, so two registers never share one."""

    __tablename__ = "store_counters"

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
