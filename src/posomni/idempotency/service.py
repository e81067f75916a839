"""Idempotency keys for requests that move money (completing a sale, refunds, voids).

A key is stored in the database (unique per scope), so the guarantee holds across app processes. The first
request with a key runs; a repeat gets the stored response without anything running again; the same key with
a different body is refused. Refusals the client caused (4xx) are stored like successes — a retried declined
card stays declined — while an unexpected failure frees the key so a retry runs again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Update, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.database import Database
from posomni.idempotency.models import IdempotencyKey
from posomni.kit.db import rowcount
from posomni.kit.errors import Conflict, PosError, ValidationFailed
from posomni.kit.time import utcnow

MAX_KEY_LENGTH = 200
# A request still "in progress" after this long died with its process; a retry may take the key over.
STALE_AFTER = timedelta(minutes=5)
IN_PROGRESS = "in_progress"
COMPLETED = "completed"


class KeyInUse(Conflict):
    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still running; retry in a moment."


class KeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with a different request body."


class KeyInvalid(ValidationFailed):
    code = "idempotency_key_invalid"
    default_message = "The Idempotency-Key header must be 1 to 200 visible characters."


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise KeyInvalid()
    return key


async def begin(database: Database, scope: str, key: str, request_hash: str) -> StoredResponse | None:
    """Claim the key (own transaction). Returns the stored response when the request already ran."""
    try:
        async with database.unit_of_work() as session:
            session.add(IdempotencyKey(scope=scope, key=key, request_hash=request_hash))
        return None
    except IntegrityError:
        pass
    async with database.unit_of_work() as session:
        row = await session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key).with_for_update()
        )
        if row is None:  # freed by a failed attempt in the meantime: try once more
            session.add(IdempotencyKey(scope=scope, key=key, request_hash=request_hash))
            return None
        if row.request_hash != request_hash:
            raise KeyReused()
        if row.status == COMPLETED and row.response_status is not None and row.response_body is not None:
            return StoredResponse(row.response_status, row.response_body)
        if utcnow() - row.created_at < STALE_AFTER:
            raise KeyInUse()
        row.created_at = utcnow()
        return None


async def finish(database: Database, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
    async with database.unit_of_work() as session:
        await finish_in(session, scope, key, status, body)


async def finish_in(session: AsyncSession, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
    """Store the response of a claimed key in the caller's transaction: written with the change it answers, a
    crash cannot leave the change made and the key still running. Only a key still running is touched."""
    await session.execute(_answer_running(status, body).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))


async def settle_in_flight(session: AsyncSession, scope: str, status: int, body: dict[str, Any]) -> int:
    """Every key of `scope` still running gets this response (in the caller's transaction): for the recovery
    of work whose request died, so that the client's retry gets the answer instead of `idempotency_key_in_use`.
    Returns how many keys were settled."""
    return rowcount(await session.execute(_answer_running(status, body).where(IdempotencyKey.scope == scope)))


def _answer_running(status: int, body: dict[str, Any]) -> Update:
    """Running keys (narrow it with `.where`) completed with this response."""
    return (
        update(IdempotencyKey)
        .where(IdempotencyKey.status == IN_PROGRESS)
        .values(status=COMPLETED, response_status=status, response_body=body, completed_at=utcnow())
    )


async def release_in_flight(session: AsyncSession, scope: str) -> int:
    """Free every key of `scope` still running (in the caller's transaction): the work it claimed was undone by
    the recovery of a dead request, and a retry with the key should run it again. Returns how many were freed."""
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.status == IN_PROGRESS)
    )
    return rowcount(result)


async def release(database: Database, scope: str, key: str) -> None:
    async with database.unit_of_work() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.scope == scope, IdempotencyKey.key == key, IdempotencyKey.status == IN_PROGRESS
            )
        )


@dataclass
class Claim:
    """A key this request holds. Work that stores its response itself (`finish_in`, in the transaction of
    its change) sets `finished` once that transaction has committed."""

    scope: str
    key: str
    finished: bool = False


async def run_once(
    database: Database,
    *,
    scope: str,
    key: str | None,
    body: Any,
    call: Callable[[Claim | None], Awaitable[tuple[int, dict[str, Any]]]],
) -> StoredResponse:
    """Run `call` at most once per (scope, key); without a key it simply runs (and gets no claim)."""
    if key is None:
        status, payload = await call(None)
        return StoredResponse(status, payload)
    key = check_key(key)
    stored = await begin(database, scope, key, body_hash(body))
    if stored is not None:
        return stored
    claim = Claim(scope, key)
    try:
        status, payload = await call(claim)
    except PosError as exc:
        if exc.status_code < 500:
            await finish(database, scope, key, exc.status_code, exc.to_dict())
        else:
            await release(database, scope, key)
        raise
    except BaseException:
        await release(database, scope, key)
        raise
    if not claim.finished:
        await finish(database, scope, key, status, payload)
    return StoredResponse(status, payload)
