"""`backup restore`: put a backup back into the configured database.

Only with the app and the worker stopped. Before anything is replaced: the file's checksum must match, the
backup must be of the configured kind of database and of a migration revision this code knows, and (unless
refused by the operator) a safety copy of the current database is written to BACKUP_DIR as `pre-restore-…`.

PostgreSQL: `pg_restore --clean --if-exists --single-transaction`, refused while any POS-Omni process is still
connected. SQLite: the backup API writes the backup into the database file under SQLite's own lock, all pages at
once. Afterwards the `backup_records` rows are brought up to date from the metadata files in BACKUP_DIR (the
restored rows are as old as the backup), the database is migrated to head when the backup is older, and the
restore is written to the audit log.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from posomni import migrate
from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.backups import dumps
from posomni.backups.errors import BackupFailed, RestoreRefused
from posomni.backups.models import BackupRecord
from posomni.backups.service import EXTENSIONS, ResolvedBackup, describe
from posomni.backups.verification import known_revision
from posomni.config import Settings
from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.logging import get_logger
from posomni.models import metadata as schema
from posomni.security.crypto import EncryptionService

log = get_logger(__name__)


@dataclass
class RestoreResult:
    file: Path
    revision: str | None
    migrated_to: str | None
    safety_copy: Path | None
    records_reconciled: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "revision": self.revision,
            "migrated_to": self.migrated_to,
            "safety_copy": str(self.safety_copy) if self.safety_copy else None,
            "records_reconciled": self.records_reconciled,
            "seconds": round(self.seconds, 3),
        }


async def app_connections(database: Database) -> int:
    """Other POS-Omni processes connected to the database (the app and the worker name themselves)."""
    async with database.engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND application_name = 'posomni'"
            )
        )
    return int(count or 0)


async def _safety_copy(database: Database, settings: Settings) -> Path:
    dumps.prepare_dir(settings.backup_dir)
    # Not named posomni-*: it is no regular backup, so neither listed, nor pruned, nor reconciled.
    path = settings.backup_dir / f"pre-restore-{utcnow():%Y%m%dT%H%M%SZ}.{EXTENSIONS[database.kind]}"
    dumps.create_private(path)
    try:
        if database.kind == "postgresql":
            await asyncio.to_thread(dumps.pg_dump, dumps.PgTarget.from_url(database.url), path)
        else:
            await asyncio.to_thread(dumps.sqlite_copy, dumps.sqlite_path(database.url), path)
    except BaseException:
        dumps.remove_quietly(path)
        raise
    return path


async def _drop_tables_not_in(database: Database, keep: set[str]) -> list[str]:
    """Tables of a newer migration than the backup's: `--clean` leaves them, and `db migrate` would then fail
    to create them again. Only POS-Omni's own tables are considered."""

    def existing(sync: Connection) -> set[str]:
        return set(inspect(sync).get_table_names())

    async with database.engine.begin() as connection:
        extra = sorted(((await connection.run_sync(existing)) & set(schema.tables)) - keep)
        for name in extra:
            # The names come from our own metadata, never from input.
            await connection.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    return extra


async def _replace(database: Database, backup: ResolvedBackup) -> None:
    if database.kind == "postgresql":
        target = dumps.PgTarget.from_url(database.url)
        archive_tables = await asyncio.to_thread(dumps.pg_archive_tables, backup.file)
        dropped = await _drop_tables_not_in(database, archive_tables)
        if dropped:
            log.info("restore_dropped_newer_tables", tables=dropped)
        await database.dispose()
        await asyncio.to_thread(dumps.pg_restore, target, backup.file, clean=True)
        return
    integrity = await asyncio.to_thread(dumps.sqlite_integrity, backup.file)
    if integrity != "ok":
        raise RestoreRefused(f"the backup file fails SQLite's integrity check: {integrity}")
    await database.dispose()
    await asyncio.to_thread(dumps.sqlite_restore, backup.file, dumps.sqlite_path(database.url))


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


async def reconcile_records(database: Database, backup_dir: Path) -> int:
    """Bring `backup_records` in line with the backup files present (after a restore the rows are those of the
    restored moment: the restored backup's own row still says "running", later backups have no row)."""
    changed = 0
    async with database.unit_of_work() as session:
        records = {r.id: r for r in await session.scalars(select(BackupRecord))}
        for path in dumps.metadata_files(backup_dir):
            try:
                meta = dumps.read_metadata(path)
            except BackupFailed:
                continue
            record_id = meta.get("record_id")
            record = records.get(record_id) if isinstance(record_id, int) else None
            if record is not None and record.status == "succeeded":
                continue
            if record is None:
                if isinstance(record_id, int) and record_id not in records:
                    record = BackupRecord(id=record_id, method=str(meta.get("database_kind")))
                else:
                    record = BackupRecord(method=str(meta.get("database_kind")))
                record.started_at = _parse_time(meta.get("started_at")) or utcnow()
                session.add(record)
            record.status = "succeeded"
            record.finished_at = _parse_time(meta.get("finished_at"))
            record.location = str(path.resolve())
            record.size_bytes = meta.get("size_bytes")
            record.sha256 = meta.get("sha256")
            record.error = None
            verification = meta.get("verification") or {}
            record.verified_at = _parse_time(verification.get("at")) if verification.get("ok") else None
            changed += 1
        for record in records.values():
            if record.status == "running":
                record.status = "failed"
                record.finished_at = utcnow()
                record.error = "interrupted: found running after a restore, with no file"
                changed += 1
        await session.flush()
        if database.kind == "postgresql":
            # Rows inserted with their original ids: move the id sequence past them.
            await session.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('backup_records', 'id'), "
                    "(SELECT COALESCE(max(id), 0) + 1 FROM backup_records), false)"
                )
            )
    return changed


async def restore_backup(
    database: Database,
    settings: Settings,
    crypto: EncryptionService,
    backup: ResolvedBackup,
    *,
    safety_copy: bool = True,
    actor_name: str = "backup-restore",
) -> RestoreResult:
    started = time.perf_counter()
    kind = backup.metadata.get("database_kind")
    if kind != database.kind:
        raise RestoreRefused(f"this is a {kind} backup and the configured database is {database.kind}")
    actual = await asyncio.to_thread(dumps.sha256_file, backup.file)
    expected = {backup.metadata.get("sha256")} | ({backup.record_sha256} if backup.record_sha256 else set())
    if expected != {actual}:
        raise RestoreRefused("the backup file's SHA-256 does not match the recorded one: it is damaged")
    revision = backup.metadata.get("revision")
    if not known_revision(revision):
        raise RestoreRefused(f"the backup is at revision {revision}, unknown to this version: upgrade POS-Omni first")
    # Our own pooled connections would count as "other POS-Omni connections": start from an empty pool.
    await database.dispose()
    if database.kind == "postgresql" and (others := await app_connections(database)):
        raise RestoreRefused(
            f"{others} POS-Omni connection(s) are open: stop the app and the worker first "
            "(systemctl stop posomni posomni-worker)"
        )
    copy = None
    if safety_copy:
        try:
            copy = await _safety_copy(database, settings)
        except Exception as exc:
            raise RestoreRefused(
                f"the safety copy of the current database failed ({describe(exc, database.url)}); "
                "fix it, or pass --no-safety-copy when the current database is beyond saving"
            ) from None
    try:
        await _replace(database, backup)
    except RestoreRefused:
        raise
    except Exception as exc:
        raise BackupFailed(f"the restore failed: {describe(exc, database.url)}") from None
    await database.dispose()  # connections opened before the restore may hold the old schema's state
    # Migrate first: the code below reads the tables with today's models.
    state = await migrate.status(database.engine)
    migrated_to = None
    if not state.up_to_date:
        await migrate.upgrade(database.engine)
        migrated_to = migrate.head_revision()
    reconciled = await reconcile_records(database, settings.backup_dir)
    async with database.unit_of_work() as session:
        await audit.record(
            session, crypto, Actor.system(actor_name), "backups.restored", store_id=None,
            target_type="backup", target_id=backup.metadata.get("record_id"),
            details={"file": backup.file.name, "sha256": actual, "revision": revision, "migrated_to": migrated_to},
        )  # fmt: skip
    result = RestoreResult(backup.file, revision, migrated_to, copy, reconciled, time.perf_counter() - started)
    log.info("backup_restored", file=backup.file.name, seconds=round(result.seconds, 3))
    return result
