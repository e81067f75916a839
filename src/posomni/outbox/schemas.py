from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class DeadMessage(BaseModel):
    id: int
    store_id: int | None
    topic: str
    aggregate_id: str
    idempotency_key: str
    attempts: int
    last_error: str | None
    created_at: datetime


class OutboxStatus(BaseModel):
    pending: int
    # Of the pending: those whose last try failed (they wait for their next attempt).
    failing: int
    oldest_pending_at: datetime | None
    oldest_pending_age_seconds: float | None
    # None when not counted (health checks and gauges skip the table's history).
    delivered: int | None
    dead: int
    # The oldest dead messages, at most the requested number.
    dead_messages: list[DeadMessage]


class OutboxHealth(BaseModel):
    # Never "down": without the back office the register still sells; the outbox only waits.
    status: Literal["ok", "degraded"]
    pending: int
    oldest_pending_age_seconds: float | None
    dead: int
    stale_after_seconds: float
    message: str
    backoffice: dict[str, Any] | None = None
