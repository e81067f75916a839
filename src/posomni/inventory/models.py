from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin
from posomni.kit.time import utcnow


class MovementReason(enum.StrEnum):
    SALE = "sale"
    RETURN = "return"
    RECEIVE = "receive"
    ADJUST = "adjust"
    COUNT = "count"
    TRANSFER = "transfer"
    DAMAGE = "damage"


REASON_VALUES = ", ".join(f"'{r.value}'" for r in MovementReason)


class StockLevel(Base):
    """Stock of one base product in one store, in base units (bottles, cans)."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        # The database itself refuses an oversell unless the store chose to allow negative stock.
        CheckConstraint("on_hand >= 0 OR allow_negative", name="on_hand_non_negative"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("reorder_point >= 0", name="reorder_point_non_negative"),
    )

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    # Held by sales that are completing (reserved in one saga step, committed or released in a later one).
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    reorder_point: Mapped[int] = mapped_column(Integer, default=0)
    reorder_quantity: Mapped[int] = mapped_column(Integer, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StockMovement(IdMixin, Base):
    """Every change of stock, signed, in base units; the ledger that `on_hand` must always equal."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint(f"reason IN ({REASON_VALUES})", name="reason_known"),
        Index("ix_stock_movements_store_product_time", "store_id", "product_id", "created_at"),
        # Finds the movements of one sale, return, invoice or count: how repeated calls are recognised.
        Index("ix_stock_movements_store_reference", "store_id", "reference"),
    )

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))
    # What caused it: a sale's receipt number, an invoice number, a count id.
    reference: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StockReservation(Base):
    """Base units held for one completing sale (`reference`), until `commit_sale` or `release`.

    The sum of a product's reservations is its `StockLevel.reserved`; keeping them by reference makes release
    and commit idempotent and lets crash recovery find what a dead process left reserved."""

    __tablename__ = "stock_reservations"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PurchaseInvoice(IdMixin, Base):
    """A distributor's invoice, received into one store. Purchase records are kept at least 3 years
    (Fla. Stat. 561.55): the app has no way to delete one."""

    __tablename__ = "purchase_invoices"
    __table_args__ = (
        UniqueConstraint("supplier", "invoice_number"),
        CheckConstraint("total_cost_cents >= 0", name="total_cost_non_negative"),
        Index("ix_purchase_invoices_store_received", "store_id", "received_at"),
    )

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"))
    supplier: Mapped[str] = mapped_column(String(100))
    invoice_number: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    note: Mapped[str] = mapped_column(String(500), default="")
    # Cents: the sum of the lines' quantity × cost.
    total_cost_cents: Mapped[int] = mapped_column(Integer, default=0)


class PurchaseInvoiceLine(IdMixin, Base):
    __tablename__ = "purchase_invoice_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("units_per_pack >= 1", name="units_per_pack_positive"),
        CheckConstraint("cost_cents IS NULL OR cost_cents >= 0", name="cost_non_negative"),
    )

    invoice_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("purchase_invoices.id", ondelete="RESTRICT"), index=True
    )
    # As invoiced (often a case) ...
    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    units_per_pack: Mapped[int] = mapped_column(Integer)
    # ... and as stocked: base units of the base product (quantity × units_per_pack).
    stock_product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"))
    base_units: Mapped[int] = mapped_column(Integer)
    # Cents per invoiced unit (per case), and what that makes per base unit, rounded half-up.
    cost_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    unit_cost_cents: Mapped[int | None] = mapped_column(Integer, default=None)


class CountStatus(enum.StrEnum):
    OPEN = "open"
    POSTED = "posted"
    CANCELLED = "cancelled"


COUNT_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in CountStatus)


class StockCount(IdMixin, Base):
    """A cycle count: expected quantities snapshotted at the start, counted quantities entered, the variance
    posted as `count` movements."""

    __tablename__ = "stock_counts"
    __table_args__ = (CheckConstraint(f"status IN ({COUNT_STATUS_VALUES})", name="status_known"),)

    store_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CountStatus.OPEN.value)
    note: Mapped[str] = mapped_column(String(500), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), default=None)


class StockCountLine(Base):
    """One base product of a count; every quantity in base units, costs in cents."""

    __tablename__ = "stock_count_lines"
    __table_args__ = (CheckConstraint("counted IS NULL OR counted >= 0", name="counted_non_negative"),)

    count_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("stock_counts.id", ondelete="RESTRICT"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("products.id", ondelete="RESTRICT"), primary_key=True)
    # on_hand when the count started ...
    expected: Mapped[int] = mapped_column(Integer)
    # ... and when the counted quantity was entered: sales in between are already off the shelf, so the
    # variance is measured against this one.
    expected_at_count: Mapped[int | None] = mapped_column(Integer, default=None)
    counted: Mapped[int | None] = mapped_column(Integer, default=None)
    counted_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when the count is posted.
    variance: Mapped[int | None] = mapped_column(Integer, default=None)
    unit_cost_cents: Mapped[int | None] = mapped_column(Integer, default=None)
