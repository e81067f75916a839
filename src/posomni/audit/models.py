from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, BigIntId, IdMixin
from posomni.kit.time import utcnow


class AuditEntry(IdMixin, Base):
    """Append-only, hash-chained record of a sensitive action. `entry_hash` covers the entry's content and the
    previous entry's hash in the same chain, so an edited or deleted row breaks the chain."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_log_occurred_at", "occurred_at"),
        Index("ix_audit_log_action", "action"),
    )

    # One chain per store ("store:1"), plus "global" for chain-wide actions.
    chain: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    store_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("stores.id", ondelete="RESTRICT"), default=None)
    register_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("registers.id", ondelete="RESTRICT"), default=None
    )
    actor_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="RESTRICT"), index=True, default=None
    )
    actor_role: Mapped[str | None] = mapped_column(String(16), default=None)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32), default=None)
    target_id: Mapped[str | None] = mapped_column(String(64), default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    # AES-GCM token of the JSON details, bound to this entry's chain and sequence.
    payload_encrypted: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The newest link of each chain. Appending locks this row, so entries of one chain get consecutive
    sequence numbers even when several app processes write at once."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    # After a retention purge: the sequence number and hash of the last removed entry, so the chain stays
    # verifiable from its first remaining entry. The purge itself is recorded as an entry of the chain.
    anchor_seq: Mapped[int] = mapped_column(Integer, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))
