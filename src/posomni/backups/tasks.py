"""The worker's daily backup (`BACKUP_SCHEDULE`, store-local time): create, verify, apply retention.

Several workers may run (on PostgreSQL); each checks every minute whether today's run is due, and claims it
by inserting the "running" row under a transaction-scoped advisory lock, so exactly one of them takes it. A
failed run is retried an hour later; a row left "running" by a crashed worker stops blocking after six hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, text

from posomni.backups import service, verification
from posomni.backups.models import BackupRecord
from posomni.config import Settings
from posomni.database import Database
from posomni.kit.time import local_now, utcnow
from posomni.logging import get_logger
from posomni.security.crypto import EncryptionService

log = get_logger(__name__)

CHECK_INTERVAL_S = 60.0
RETRY_AFTER = timedelta(hours=1)
STALE_RUNNING = timedelta(hours=6)
# Any fixed number, the same in every process: pg_advisory_xact_lock's key for "claim the scheduled backup".
ADVISORY_LOCK_KEY = 0x706F_7362_6B75


def due_since(settings: Settings, now: datetime) -> datetime | None:
    """The most recent scheduled moment at or before `now` (UTC), or None when backups are not scheduled."""
    if settings.backup_schedule is None:
        return None
    local = local_now(settings.store_timezone, now)
    moment = local.replace(
        hour=settings.backup_schedule.hour, minute=settings.backup_schedule.minute, second=0, microsecond=0
    )
    if moment > local:
        moment -= timedelta(days=1)
    return moment.astimezone(now.tzinfo)


async def claim(database: Database, since: datetime, now: datetime) -> int | None:
    """Insert the "running" row for the run due since `since`, unless one already covers it."""
    async with database.unit_of_work() as session:
        if database.kind == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        # (SQLite needs no lock: its write transactions begin IMMEDIATE, one at a time.)
        covered = await session.scalar(
            select(BackupRecord.id)
            .where(
                BackupRecord.started_at >= since,
                or_(
                    BackupRecord.status == "succeeded",
                    (BackupRecord.status == "running") & (BackupRecord.started_at > now - STALE_RUNNING),
                    (BackupRecord.status == "failed") & (BackupRecord.started_at > now - RETRY_AFTER),
                ),
            )
            .limit(1)
        )
        if covered is not None:
            return None
        record = BackupRecord(method=database.kind, status="running", started_at=now)
        session.add(record)
        await session.flush()
        return record.id


async def run_if_due(
    database: Database, settings: Settings, crypto: EncryptionService, now: datetime | None = None
) -> int | None:
    """One round of the schedule; returns the id of the backup taken, if one was."""
    moment = now or utcnow()
    since = due_since(settings, moment)
    if since is None:
        return None
    record_id = await claim(database, since, moment)
    if record_id is None:
        return None
    log.info("scheduled_backup_started", record_id=record_id)
    # Retention runs after verification, so the backup just proven restorable is the one kept as verified.
    result = await service.create_backup(database, settings, record_id=record_id, prune=False)
    backup = await service.resolve(database, settings, record_id=result.record_id)
    report = await verification.verify_backup(database, settings, crypto, backup)
    if not report.ok:
        log.error("scheduled_backup_verification_failed", record_id=record_id, error=report.error)
    await service.apply_retention(database, settings)
    return record_id
