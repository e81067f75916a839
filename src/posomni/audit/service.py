"""The append-only audit log: written in the caller's transaction, hash-chained per store, verifiable, purged
only past its retention."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit.chain import GENESIS_HASH, canonical, chain_for, entry_hash, hashed_columns, payload_aad
from posomni.audit.models import AuditChainHead, AuditEntry
from posomni.auth.principal import Actor
from posomni.kit.errors import ValidationFailed
from posomni.kit.time import utcnow, years_before
from posomni.security.crypto import DecryptionError, EncryptionService

VERIFY_BATCH = 500


class _Default(enum.Enum):
    ACTOR_STORE = "actor-store"
    ALL_CHAINS = "all-chains"


# `record(..., store_id=ACTOR_STORE)`: the chain of the actor's own store (the common case).
ACTOR_STORE: Final = _Default.ACTOR_STORE
ALL_CHAINS: Final = _Default.ALL_CHAINS
PURGE_ACTION = "audit.purged"


async def _locked_head(session: AsyncSession, chain: str) -> AuditChainHead:
    # FOR UPDATE serialises appends to one chain across processes until the caller's transaction ends (SQLite
    # needs nothing more: its write transactions already run one at a time).
    locking = (
        select(AuditChainHead)
        .where(AuditChainHead.chain == chain)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    head = await session.scalar(locking)
    if head is None:
        # The chain's first entry (once per chain): create the head, then lock it as above. Two first entries
        # at once both insert; one of them waits on the key and inserts nothing.
        values = {"chain": chain, "seq": 0, "last_hash": GENESIS_HASH, "anchor_seq": 0, "anchor_hash": GENESIS_HASH}
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(AuditChainHead).values(**values).on_conflict_do_nothing())
        head = await session.scalar(locking)
    assert head is not None
    return head


async def record(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    action: str,
    *,
    store_id: int | Literal[_Default.ACTOR_STORE] | None = ACTOR_STORE,
    target_type: str | None = None,
    target_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction: it commits or rolls back with the action it records.

    `store_id` defaults to the actor's store; pass None explicitly for a chain-wide action."""
    store = actor.store_id if store_id is ACTOR_STORE else store_id
    chain = chain_for(store)
    head = await _locked_head(session, chain)
    seq = head.seq + 1
    occurred_at = utcnow()
    # Normalised to plain JSON first, so the hashed details and the stored (decrypted) details are identical.
    body = json.loads(canonical(details or {}))
    columns: dict[str, Any] = {
        "chain": chain,
        "seq": seq,
        "occurred_at": occurred_at,
        "store_id": store,
        "register_id": actor.register_id,
        "actor_id": actor.user_id,
        "actor_role": actor.role,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "request_id": actor.request_id,
        "prev_hash": head.last_hash,
    }
    digest = entry_hash(columns, body)
    entry = AuditEntry(
        **columns, payload_encrypted=crypto.encrypt_json(body, aad=payload_aad(chain, seq)), entry_hash=digest
    )
    head.seq = seq
    head.last_hash = digest
    session.add(entry)
    await session.flush()
    return entry


def decrypt_details(crypto: EncryptionService, entry: AuditEntry) -> Any:
    return crypto.decrypt_json(
        entry.payload_encrypted,
        aad=payload_aad(entry.chain, entry.seq),
        label=f"audit entry {entry.chain}#{entry.seq}",
    )


@dataclass(frozen=True)
class ChainReport:
    chain: str
    ok: bool
    entries_checked: int
    last_seq: int
    first_broken_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "last_seq": self.last_seq,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
        }


async def chains(session: AsyncSession) -> list[str]:
    names = set(await session.scalars(select(AuditChainHead.chain)))
    names |= set(await session.scalars(select(AuditEntry.chain).distinct()))
    return sorted(names)


async def verify_chain(session: AsyncSession, crypto: EncryptionService, chain: str) -> ChainReport:
    """Walk one chain from its first remaining entry; report the first link that does not hold."""
    head = await session.get(AuditChainHead, chain)
    if head is None:
        return ChainReport(chain, False, 0, 0, None, "the chain has entries but no head record")
    expected_seq = head.anchor_seq + 1
    prev_hash = head.anchor_hash
    checked = 0

    def broken(seq: int, problem: str) -> ChainReport:
        return ChainReport(chain, False, checked, expected_seq - 1, seq, problem)

    after = head.anchor_seq
    # The anchor lives in the mutable head row; the chain itself records every purge, and the newest recorded
    # purge must name the same anchor, so moving the anchor to hide removed entries is detected.
    recorded_anchor: tuple[Any, Any] | None = None
    while True:
        batch = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.chain == chain, AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(VERIFY_BATCH)
            )
        )
        if not batch:
            break
        for entry in batch:
            if entry.seq != expected_seq:
                return broken(expected_seq, f"entry {expected_seq} is missing (next found: {entry.seq})")
            if entry.prev_hash != prev_hash:
                return broken(entry.seq, "its link to the previous entry does not match")
            try:
                details = decrypt_details(crypto, entry)
            except DecryptionError as exc:
                return broken(entry.seq, f"its details cannot be decrypted ({exc.code})")
            digest = entry_hash(hashed_columns(entry), details)
            if digest != entry.entry_hash:
                return broken(entry.seq, "its content was changed after it was written")
            if entry.action == PURGE_ACTION:
                recorded_anchor = (details.get("anchor_seq"), details.get("anchor_hash"))
            prev_hash = entry.entry_hash
            expected_seq += 1
            checked += 1
        after = batch[-1].seq
    if head.seq != expected_seq - 1 or head.last_hash != prev_hash:
        return broken(expected_seq, f"entries after {expected_seq - 1} were removed (the head says {head.seq})")
    if head.anchor_seq and recorded_anchor != (head.anchor_seq, head.anchor_hash):
        return broken(head.anchor_seq + 1, "entries were removed without a recorded purge")
    return ChainReport(chain, True, checked, expected_seq - 1)


async def verify_all(
    session: AsyncSession,
    crypto: EncryptionService,
    store_id: int | Literal[_Default.ALL_CHAINS] | None = ALL_CHAINS,
) -> list[ChainReport]:
    names = await chains(session) if store_id is ALL_CHAINS else [chain_for(store_id)]
    return [await verify_chain(session, crypto, name) for name in names]


@dataclass(frozen=True)
class AuditFilter:
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    actor_id: int | None = None
    action: str | None = None
    store_id: int | None = None
    before_id: int | None = None
    limit: int = 100


async def list_entries(
    session: AsyncSession, crypto: EncryptionService, filters: AuditFilter
) -> list[tuple[AuditEntry, Any]]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(filters.limit)
    if filters.occurred_from is not None:
        query = query.where(AuditEntry.occurred_at >= filters.occurred_from)
    if filters.occurred_to is not None:
        query = query.where(AuditEntry.occurred_at < filters.occurred_to)
    if filters.actor_id is not None:
        query = query.where(AuditEntry.actor_id == filters.actor_id)
    if filters.action is not None:
        # A trailing dot lists a family: "auth." gives every sign-in event.
        if filters.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(filters.action))
        else:
            query = query.where(AuditEntry.action == filters.action)
    if filters.store_id is not None:
        query = query.where(AuditEntry.store_id == filters.store_id)
    if filters.before_id is not None:
        query = query.where(AuditEntry.id < filters.before_id)
    entries = list(await session.scalars(query))
    return [(entry, decrypt_details(crypto, entry)) for entry in entries]


class RetentionViolation(ValidationFailed):
    code = "retention_violation"
    default_message = "Records younger than the retention period cannot be removed."


@dataclass(frozen=True)
class PurgeResult:
    chain: str
    deleted: int
    anchor_seq: int


def retention_cutoff(retention_years: int, now: datetime | None = None) -> datetime:
    return years_before(now or utcnow(), retention_years)


async def purge(
    session: AsyncSession,
    crypto: EncryptionService,
    actor: Actor,
    *,
    before: datetime,
    retention_years: int,
    now: datetime | None = None,
) -> list[PurgeResult]:
    """Remove entries older than `before`, which must itself be older than the retention period.

    Each chain keeps an anchor (the last removed entry's number and hash) and gets a new entry recording the
    purge, so it stays verifiable from its first remaining entry."""
    cutoff = retention_cutoff(retention_years, now)
    if before > cutoff:
        raise RetentionViolation(
            f"Only entries older than {cutoff.date().isoformat()} ({retention_years} years) may be purged.",
            details={"cutoff": cutoff.isoformat(), "retention_years": retention_years},
        )
    results = []
    for chain in await chains(session):
        head = await _locked_head(session, chain)
        through = await session.scalar(
            select(func.max(AuditEntry.seq)).where(AuditEntry.chain == chain, AuditEntry.occurred_at < before)
        )
        if through is None or through <= head.anchor_seq:
            continue
        last = await session.scalar(select(AuditEntry).where(AuditEntry.chain == chain, AuditEntry.seq == through))
        assert last is not None
        deleted = cast(
            CursorResult[Any],
            await session.execute(delete(AuditEntry).where(AuditEntry.chain == chain, AuditEntry.seq <= through)),
        )
        head.anchor_seq = through
        head.anchor_hash = last.entry_hash
        await session.flush()
        store_id = None if chain == "global" else int(chain.split(":", 1)[1])
        await record(
            session,
            crypto,
            actor,
            PURGE_ACTION,
            store_id=store_id,
            target_type="audit_chain",
            target_id=chain,
            details={
                "before": before.isoformat(),
                "anchor_seq": through,
                "anchor_hash": last.entry_hash,
                "deleted": deleted.rowcount,
            },
        )
        results.append(PurgeResult(chain, deleted.rowcount, through))
    return results
