"""Queries of the outbox. Nothing here commits: the worker and the CLI own their transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, null, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.kit.db import rowcount
from posomni.outbox.models import OutboxMessage
from posomni.stores.models import Store

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True)
class Claim:
    message: OutboxMessage
    store_code: str | None
    # The lease is written into `next_attempt_at` and doubles as a fencing token: only the holder of this
    # exact value may record the result (see `finish`).
    lease_until: datetime


async def store_heads(session: AsyncSession) -> dict[int, str | None]:
    """The id of each store's head (its oldest pending message) → the store's code. Messages without a store
    form one more lane, with code None.

    One index probe per store on (status, store_id, id), whatever the backlog: a single GROUP BY over every
    pending row would be planned as a nested loop while the table's statistics still say "few pending",
    which turns a backlog of thousands into seconds per claim.
    """
    head = (
        select(func.min(OutboxMessage.id))
        .where(OutboxMessage.status == PENDING, OutboxMessage.store_id == Store.id)
        .scalar_subquery()
    )
    per_store = select(head.label("head"), Store.code.label("code"))
    chain_wide = select(func.min(OutboxMessage.id).label("head"), null().label("code")).where(
        OutboxMessage.status == PENDING, OutboxMessage.store_id.is_(None)
    )
    rows = await session.execute(union_all(per_store, chain_wide))
    return {head_id: code for head_id, code in rows if head_id is not None}


async def claim_heads(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int, skip_locked: bool
) -> list[Claim]:
    """Lease the head message of up to `limit` stores whose head is due.

    Only heads are ever claimed, and a claimed head stays pending (with a future `next_attempt_at`) until its
    result is recorded, so a store's later messages cannot be claimed meanwhile: one message per store is in
    flight at a time, whatever the number of workers. On PostgreSQL, SKIP LOCKED lets concurrent workers pass
    over a head another worker is claiming instead of queueing behind it; a head whose lease was committed in
    the meantime fails the re-checked `status` and `next_attempt_at <= now`.
    """
    heads = await store_heads(session)
    if not heads:
        return []
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.id.in_(heads),
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    claimed = await session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due))
        .values(next_attempt_at=lease_until)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    messages = sorted(claimed.all(), key=lambda m: m.id)
    return [Claim(m, heads[m.id], lease_until) for m in messages]


async def claim_store_head(
    session: AsyncSession, previous: Claim, *, now: datetime, lease_until: datetime, skip_locked: bool
) -> Claim | None:
    """Lease the next head of the store whose message `previous` was just recorded, if it is due."""
    store_id = previous.message.store_id
    lane = OutboxMessage.store_id.is_(None) if store_id is None else OutboxMessage.store_id == store_id
    head = select(func.min(OutboxMessage.id)).where(OutboxMessage.status == PENDING, lane).scalar_subquery()
    due = select(OutboxMessage.id).where(
        OutboxMessage.id == head, OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    message = await session.scalar(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due))
        .values(next_attempt_at=lease_until)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    return Claim(message, previous.store_code, lease_until) if message is not None else None


async def finish(session: AsyncSession, claim: Claim, **values: Any) -> bool:
    """Record a claimed message's result, only if the claim still holds; False when the lease was lost
    (it expired and another worker took the message over, or an operator changed it)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == claim.message.id,
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at == claim.lease_until,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


@dataclass(frozen=True)
class Counts:
    pending: int
    failing: int
    delivered: int | None
    dead: int
    oldest_pending_at: datetime | None


def _in_scope(scope: int | None) -> list[ColumnElement[bool]]:
    """`scope`: one store's messages only, or None for every message (every store's and the chain-wide ones)."""
    return [] if scope is None else [OutboxMessage.store_id == scope]


async def counts(session: AsyncSession, *, include_delivered: bool = True, scope: int | None = None) -> Counts:
    """Without `include_delivered` only the pending and dead rows are read: the delivered ones are nearly the
    whole table, and counting them on every gauge refresh or /health call would grow with its history."""
    by_status: dict[str, int] = {}
    oldest: datetime | None = None
    query = (
        select(OutboxMessage.status, func.count(), func.min(OutboxMessage.created_at))
        .where(*_in_scope(scope))
        .group_by(OutboxMessage.status)
    )
    if not include_delivered:
        query = query.where(OutboxMessage.status.in_([PENDING, DEAD]))
    for status, count, first_created in await session.execute(query):
        by_status[status] = count
        if status == PENDING:
            oldest = first_created
    failing = await session.scalar(
        select(func.count()).where(
            OutboxMessage.status == PENDING, OutboxMessage.last_error.is_not(None), *_in_scope(scope)
        )
    )
    return Counts(
        pending=by_status.get(PENDING, 0),
        failing=failing or 0,
        delivered=by_status.get(DELIVERED, 0) if include_delivered else None,
        dead=by_status.get(DEAD, 0),
        oldest_pending_at=oldest,
    )


async def dead_messages(
    session: AsyncSession, limit: int | None, *, scope: int | None = None, lock: bool = False
) -> Sequence[OutboxMessage]:
    """The oldest dead messages (all of them when `limit` is None); `lock` holds them until the transaction
    ends, so that a retry reads the messages it requeues."""
    query = select(OutboxMessage).where(OutboxMessage.status == DEAD, *_in_scope(scope)).order_by(OutboxMessage.id)
    if limit is not None:
        query = query.limit(limit)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).all()


async def get(session: AsyncSession, message_id: int, *, lock: bool = False) -> OutboxMessage | None:
    return await session.get(OutboxMessage, message_id, with_for_update=lock, populate_existing=lock)


async def requeue_dead(session: AsyncSession, *, now: datetime, ids: Sequence[int] | None = None) -> int:
    """Dead messages back to pending with a fresh attempt budget; all of them when `ids` is None."""
    query = update(OutboxMessage).where(OutboxMessage.status == DEAD)
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    result = await session.execute(
        query.values(status=PENDING, attempts=0, next_attempt_at=now).execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def requeue_delivered(
    session: AsyncSession,
    *,
    now: datetime,
    store_id: int | None,
    created_from: datetime,
    created_before: datetime | None,
) -> int:
    """Delivered messages of one store (None: the chain-wide lane) created in [created_from, created_before)
    back to pending. They keep their ids, so their place in the store's order, and their idempotency keys."""
    lane = OutboxMessage.store_id.is_(None) if store_id is None else OutboxMessage.store_id == store_id
    query = update(OutboxMessage).where(
        OutboxMessage.status == DELIVERED, lane, OutboxMessage.created_at >= created_from
    )
    if created_before is not None:
        query = query.where(OutboxMessage.created_at < created_before)
    result = await session.execute(
        query.values(
            status=PENDING, attempts=0, next_attempt_at=now, delivered_at=None, last_error=None
        ).execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def stores(session: AsyncSession) -> list[tuple[int, str, str]]:
    """(id, code, timezone) of every store."""
    rows = await session.execute(select(Store.id, Store.code, Store.timezone).order_by(Store.id))
    return [(store_id, code, tz) for store_id, code, tz in rows]
