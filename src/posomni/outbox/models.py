from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin
from posomni.kit.time import utcnow


class OutboxMessage(IdMixin, Base):
    """A message for the back office, written in the same transaction as the change it describes and
    delivered later by the worker, at least once and in order per store."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_outbox_messages_status_store_id", "status", "store_id", "id"),
    )

    store_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), default=None)
    topic: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(64), default="")
    # Sent with the message so the receiver can drop repeats.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
