"""The outbox: what the back office must learn, written in the same transaction as the change it describes
and delivered later by `worker.OutboxWorker` — at least once, in order per store, with one idempotency key per
message that stays the same on every resend. A sale never waits for the back office: `enqueue` only adds a
row to the caller's session, and the caller's transaction commits it together with the sale (or not at all).

Topics (sent as the document `type`; payload amounts are integer cents):

    sale.completed   a sale was completed: lines, tax, tenders            aggregate: the sale id
    sale.returned    goods were returned against a sale                   aggregate: the return id
    sale.voided      a completed sale was voided                          aggregate: the sale id
    stock.movement   stock changed: receipt, adjustment, count, transfer  aggregate: the movement id
    price.changed    a product's price changed                            aggregate: the product id
    shift.closed     a register's shift was closed: its Z report          aggregate: the shift id

Callers should pass a deterministic idempotency key when the event has one (`sale.completed:<sale id>`), so
that a retried request cannot enqueue the same event twice (the key is unique). Without one, a random key
is made: still unique per message, which is what the receiver needs to drop repeats.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from posomni.kit.ids import is_valid_request_id
from posomni.kit.time import utcnow, zone
from posomni.outbox import repository
from posomni.outbox.errors import InvalidOutboxMessage, OutboxMessageNotDead, OutboxMessageNotFound, UnknownStore
from posomni.outbox.metrics import outbox_metrics
from posomni.outbox.models import OutboxMessage
from posomni.outbox.schemas import DeadMessage, OutboxHealth, OutboxStatus

TOPICS = frozenset(
    {"sale.completed", "sale.returned", "sale.voided", "stock.movement", "price.changed", "shift.closed"}
)

# /health turns degraded when the oldest waiting message is older than this.
DEFAULT_STALE_AFTER = timedelta(minutes=15)

# Sent as an HTTP header: visible ASCII only, and it must fit the column.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_AGGREGATE_ID_MAX = 64


async def enqueue(
    session: AsyncSession,
    *,
    store_id: int | None,
    topic: str,
    aggregate_id: str,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
    request_id: str | None = None,
) -> OutboxMessage:
    """Add a message to the caller's transaction. It never talks to the back office and never commits."""
    if topic not in TOPICS:
        raise InvalidOutboxMessage(f"unknown topic {topic!r}", details={"topics": sorted(TOPICS)})
    if not aggregate_id or len(aggregate_id) > _AGGREGATE_ID_MAX:
        raise InvalidOutboxMessage(f"aggregate_id must be 1 to {_AGGREGATE_ID_MAX} characters")
    key = idempotency_key if idempotency_key is not None else f"{topic}:{aggregate_id}:{uuid.uuid4().hex}"
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidOutboxMessage("idempotency_key must be 1 to 200 visible ASCII characters")
    if request_id is not None and not is_valid_request_id(request_id):
        raise InvalidOutboxMessage("request_id is not a valid request id")
    try:
        # Fail in the caller's code, where the mistake is, rather than at flush (or, worse, at delivery).
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidOutboxMessage(f"payload is not plain JSON: {exc}") from None
    now = utcnow()
    message = OutboxMessage(
        store_id=store_id,
        topic=topic,
        aggregate_id=aggregate_id,
        idempotency_key=key,
        request_id=request_id,
        payload=payload,
        status=repository.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message


async def status(
    session: AsyncSession,
    *,
    dead_limit: int = 20,
    include_delivered: bool = True,
    now: datetime | None = None,
    scope: int | None = None,
) -> OutboxStatus:
    """Depth, age and dead messages. `scope`: one store's messages only (a store-bound viewer's), or None for
    every store and the chain-wide messages; only the whole outbox refreshes the Prometheus gauges."""
    moment = now or utcnow()
    counts = await repository.counts(session, include_delivered=include_delivered, scope=scope)
    dead = await repository.dead_messages(session, dead_limit, scope=scope) if counts.dead else []
    age = (moment - counts.oldest_pending_at).total_seconds() if counts.oldest_pending_at else None
    if scope is None:
        metrics = outbox_metrics()
        metrics.pending.set(counts.pending)
        metrics.oldest_pending_age.set(max(age or 0.0, 0.0))
        metrics.dead.set(counts.dead)
    return OutboxStatus(
        pending=counts.pending,
        failing=counts.failing,
        oldest_pending_at=counts.oldest_pending_at,
        oldest_pending_age_seconds=round(age, 3) if age is not None else None,
        delivered=counts.delivered,
        dead=counts.dead,
        dead_messages=[_dead(m) for m in dead],
    )


def _dead(message: OutboxMessage) -> DeadMessage:
    return DeadMessage(
        id=message.id,
        store_id=message.store_id,
        topic=message.topic,
        aggregate_id=message.aggregate_id,
        idempotency_key=message.idempotency_key,
        attempts=message.attempts,
        last_error=message.last_error,
        created_at=message.created_at,
    )


async def health(
    session: AsyncSession,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    backoffice: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OutboxHealth:
    """For /health: degraded (never down) when the oldest waiting message is older than `stale_after`.
    `backoffice` is the client's `health()`, shown alongside."""
    report = await status(session, dead_limit=0, include_delivered=False, now=now)
    age = report.oldest_pending_age_seconds
    stale = age is not None and age > stale_after.total_seconds()
    if stale:
        message = f"{report.pending} message(s) waiting; the oldest for {age:.0f}s"
        if backoffice is not None and not backoffice.get("configured", True):
            message += " (no back office configured)"
    elif report.dead:
        message = f"{report.dead} dead message(s): see `posomni outbox status`"
    else:
        message = "delivering"
    return OutboxHealth(
        status="degraded" if stale else "ok",
        pending=report.pending,
        oldest_pending_age_seconds=age,
        dead=report.dead,
        stale_after_seconds=stale_after.total_seconds(),
        message=message,
        backoffice=backoffice,
    )


async def retry(session: AsyncSession, message_id: int, *, scope: int | None = None) -> DeadMessage:
    """Put one dead message back in its store's queue, at its original place, with a fresh attempt budget;
    returns the message as it was when dead (for the caller's audit entry). With `scope` (a store-bound
    caller's store) another store's message, or a chain-wide one, is not found, as if it did not exist."""
    message = await repository.get(session, message_id, lock=True)
    if message is None or (scope is not None and message.store_id != scope):
        raise OutboxMessageNotFound(details={"id": message_id})
    if message.status != repository.DEAD:
        raise OutboxMessageNotDead(details={"id": message_id, "status": message.status})
    parked = _dead(message)
    await repository.requeue_dead(session, now=utcnow(), ids=[message_id])
    return parked


async def retry_all_dead(session: AsyncSession) -> list[DeadMessage]:
    """Every dead message back in its queue; returns them as they were when dead (for the audit entries)."""
    parked = [_dead(m) for m in await repository.dead_messages(session, None, lock=True)]
    if parked:
        await repository.requeue_dead(session, now=utcnow(), ids=[m.id for m in parked])
    return parked


@dataclass(frozen=True)
class Replayed:
    """One lane of a replay: a store (None: the chain-wide messages) and how many messages went back."""

    store_id: int | None
    store_code: str | None
    count: int


async def replay(
    session: AsyncSession,
    *,
    start: date,
    end: date | None = None,
    store_code: str | None = None,
    default_timezone: str,
) -> list[Replayed]:
    """Send a period again: delivered messages created from `start` to `end` (inclusive; open when None),
    in each store's local dates, go back to pending with their idempotency keys, so the receiver drops what
    it already has. Without `store_code`, every store and the chain-wide messages (whose dates are read in
    `default_timezone`). Returns each lane's count, the lanes with none included."""
    if end is not None and end < start:
        raise InvalidOutboxMessage("the end date is before the start date")
    known = await repository.stores(session)
    lanes: list[tuple[int | None, str | None, str]] = [
        (store_id, code, tz) for store_id, code, tz in known if store_code is None or code == store_code
    ]
    if store_code is None:
        lanes.append((None, None, default_timezone))
    elif not lanes:
        raise UnknownStore(details={"store": store_code})
    now = utcnow()
    replayed = []
    for store_id, code, tz in lanes:
        count = await repository.requeue_delivered(
            session,
            now=now,
            store_id=store_id,
            created_from=_local_midnight(start, tz),
            created_before=_local_midnight(end + timedelta(days=1), tz) if end is not None else None,
        )
        replayed.append(Replayed(store_id, code, count))
    return replayed


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone(tz))
