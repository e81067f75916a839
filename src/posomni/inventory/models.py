from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
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
