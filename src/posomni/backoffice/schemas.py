"""What the outbox hands to the back office, and what comes back."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class OutboundMessage:
    # The outbox row id: increasing per store, sent as `sequence` so the receiver can check the order.
    id: int
    store_id: int | None
    # The store's code is its location id at the back office; None for chain-wide documents.
    store_code: str | None
    topic: str
    aggregate_id: str
    idempotency_key: str
    request_id: str | None
    payload: Mapping[str, Any]
    created_at: datetime


class Outcome(enum.StrEnum):
    # Accepted now, or earlier (the receiver recognised the idempotency key and dropped the repeat).
    DELIVERED = "delivered"
    # A 4xx about this message (other than 401/403/429): sending it again can never succeed.
    REJECTED = "rejected"
    # The back office answered 5xx (not 502/503/504) for this message, even after the client's retries.
    FAILED = "failed"
    # Not reachable or overloaded: refused, timed out, 429, 502, 503, 504. Says nothing about the message.
    UNAVAILABLE = "unavailable"
    # 401, 403 or a redirect: our key or URL is wrong, not the message.
    MISCONFIGURED = "misconfigured"
    # The circuit breaker is open: no request was sent.
    CIRCUIT_OPEN = "circuit_open"
    # No back office is configured (CONEXXUS_API_URL unset).
    DISABLED = "disabled"


# Failures that say nothing about the message itself: they never count towards a message's attempts, so a
# long outage parks nothing and the order per store survives it.
NOT_THE_MESSAGES_FAULT = frozenset({Outcome.UNAVAILABLE, Outcome.MISCONFIGURED, Outcome.CIRCUIT_OPEN, Outcome.DISABLED})


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    # Seconds the back office (Retry-After) or the open breaker asks us to wait before the next try.
    retry_after: float | None = None
    # The receiver already had this idempotency key.
    duplicate: bool = False

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED
