from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from posomni.kit.db import Base, IdMixin
from posomni.kit.time import utcnow


class BackupRecord(IdMixin, Base):
    """One run of `posomni backup create` (and its later verification). `/health/backup` reads the newest."""

    __tablename__ = "backup_records"
    __table_args__ = (CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status_known"),)

    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default="running")
    # "postgresql" (pg_dump custom format) or "sqlite" (online backup API).
    method: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(String(500), default="")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # Set by the last `backup verify` that passed; cleared (and verify_error set) when a later one fails.
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    verify_error: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # When retention deleted the file; the row stays as the history of backups taken.
    pruned_at: Mapped[datetime | None] = mapped_column(default=None)
