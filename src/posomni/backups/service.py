"""Backups: create (with checksum, metadata and a `backup_records` row), list, find, and apply retention.

Verification lives in `verification.py`, restore in `restore.py`. Each step that must survive a failure of the
next one (the "running" row, the final status) is its own unit of work.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from posomni import __version__
from posomni.backups import dumps
from posomni.backups.errors import BackupFailed, BackupNotFound
from posomni.backups.models import BackupRecord
from posomni.backups.retention import Candidate, to_keep
from posomni.config import Settings
from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.logging import get_logger

log = get_logger(__name__)

EXTENSIONS = {"postgresql": "dump", "sqlite": "sqlite3"}
ERROR_CHARS = 2000
STALE_PARTIAL = timedelta(days=1)


@dataclass
class CreateResult:
    record_id: int
    file: Path
    size_bytes: int
    sha256: str
    revision: str | None
    row_counts: dict[str, int]
    seconds: float
    pruned: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "file": str(self.file),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "revision": self.revision,
            "row_counts": self.row_counts,
            "seconds": round(self.seconds, 3),
            "pruned": self.pruned,
        }


@dataclass(frozen=True)
class ResolvedBackup:
    """A backup file, its metadata, and its row in the configured database when it has one."""

    file: Path
    metadata: dict[str, Any]
    record_id: int | None
    record_sha256: str | None = None


def scrub(message: str, url: str) -> str:
    """Remove the database password from a message before it is stored, printed or logged."""
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    cleaned = message.replace(str(password), "***") if password else message
    return cleaned[:ERROR_CHARS]


def describe(exc: BaseException, url: str) -> str:
    if isinstance(exc, BackupFailed):
        return scrub(exc.message, url)
    original = getattr(exc, "orig", None)
    return scrub(f"{type(original or exc).__name__}: {original or exc}", url)


def resolve_location(record: BackupRecord, backup_dir: Path) -> Path:
    # The row keeps the absolute path at creation; a BACKUP_DIR mounted elsewhere since is searched by name.
    stored = Path(record.location)
    if stored.is_file():
        return stored
    return backup_dir / stored.name


async def start_record(database: Database, method: str) -> int:
    async with database.unit_of_work() as session:
        record = BackupRecord(method=method, status="running")
        session.add(record)
        await session.flush()
        return record.id


async def _fail_record(database: Database, record_id: int, message: str) -> None:
    try:
        async with database.unit_of_work() as session:
            record = await session.get(BackupRecord, record_id)
            if record is not None:
                record.status = "failed"
                record.finished_at = utcnow()
                record.error = message
    except SQLAlchemyError:  # the database itself may be why the backup failed; the log still has it
        log.warning("backup_record_not_updated", record_id=record_id)


async def _dump_postgresql(database: Database, dest: Path) -> tuple[dict[str, int], str | None]:
    target = dumps.PgTarget.from_url(database.url)
    async with database.engine.connect() as connection:
        snapshot_conn = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with snapshot_conn.begin():
            # pg_dump reads the snapshot this transaction exports, so the row counts written to the metadata
            # are exactly the rows in the dump, even while registers keep selling.
            snapshot = (await snapshot_conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            counts = await dumps.row_counts(snapshot_conn)
            revision = await dumps.revision_of(snapshot_conn)
            await asyncio.to_thread(dumps.pg_dump, target, dest, snapshot=str(snapshot))
    return counts, revision


async def _dump_sqlite(database: Database, dest: Path) -> tuple[dict[str, int], str | None]:
    await asyncio.to_thread(dumps.sqlite_copy, dumps.sqlite_path(database.url), dest)
    # Counted in the copy itself: it cannot change any more, so the counts match it exactly.
    return await asyncio.to_thread(dumps.sqlite_counts, dest)


async def create_backup(
    database: Database, settings: Settings, *, record_id: int | None = None, prune: bool = True
) -> CreateResult:
    """Back up the database into BACKUP_DIR. `record_id`: a "running" row already claimed (the scheduler)."""
    started = time.perf_counter()
    kind = database.kind
    dumps.prepare_dir(settings.backup_dir)
    if record_id is None:
        record_id = await start_record(database, kind)
    async with database.sessionmaker() as session:
        record = await session.get(BackupRecord, record_id)
        started_at = record.started_at if record is not None else utcnow()
    name = f"posomni-{started_at:%Y%m%dT%H%M%SZ}-{record_id:06d}.{EXTENSIONS[kind]}"
    final = settings.backup_dir / name
    partial = final.with_name(name + ".partial")
    try:
        dumps.create_private(partial)
        if kind == "postgresql":
            counts, revision = await _dump_postgresql(database, partial)
            tool = await asyncio.to_thread(dumps.tool_version, "pg_dump")
        else:
            counts, revision = await _dump_sqlite(database, partial)
            tool = f"sqlite3 backup API, SQLite {sqlite3.sqlite_version}"
        sha256 = await asyncio.to_thread(dumps.sha256_file, partial)
        size = partial.stat().st_size
        partial.replace(final)
        finished_at = utcnow()
        dumps.write_metadata(
            final,
            {
                "format": dumps.METADATA_FORMAT,
                "record_id": record_id,
                "file": name,
                "database_kind": kind,
                "started_at": started_at.isoformat(),
                "finished_at": finished_at.isoformat(),
                "revision": revision,
                "app_version": __version__,
                "tool": tool,
                "size_bytes": size,
                "sha256": sha256,
                "row_counts": counts,
            },
        )
        async with database.unit_of_work() as session:
            record = await session.get(BackupRecord, record_id)
            if record is None:
                raise BackupFailed(f"backup record {record_id} disappeared")
            record.status = "succeeded"
            record.finished_at = finished_at
            record.location = str(final.resolve())
            record.size_bytes = size
            record.sha256 = sha256
    except Exception as exc:
        message = describe(exc, database.url)
        dumps.remove_quietly(partial, final, dumps.metadata_path(final))
        await _fail_record(database, record_id, message)
        log.error("backup_failed", record_id=record_id, error=message)
        raise BackupFailed(message) from None
    result = CreateResult(record_id, final, size, sha256, revision, counts, time.perf_counter() - started)
    log.info("backup_created", record_id=record_id, size_bytes=size, seconds=round(result.seconds, 3))
    if prune:
        result.pruned = [r.id for r in await apply_retention(database, settings)]
    return result


async def list_backups(database: Database, *, include_pruned: bool = False, limit: int = 50) -> list[BackupRecord]:
    query = select(BackupRecord).order_by(BackupRecord.started_at.desc(), BackupRecord.id.desc()).limit(limit)
    if not include_pruned:
        query = query.where(BackupRecord.pruned_at.is_(None))
    async with database.sessionmaker() as session:
        return list(await session.scalars(query))


async def latest_succeeded(database: Database, *, verified: bool = False) -> BackupRecord | None:
    query = select(BackupRecord).where(BackupRecord.status == "succeeded", BackupRecord.pruned_at.is_(None))
    if verified:
        query = query.where(BackupRecord.verified_at.is_not(None))
    async with database.sessionmaker() as session:
        return await session.scalar(query.order_by(BackupRecord.finished_at.desc(), BackupRecord.id.desc()).limit(1))


async def resolve(
    database: Database | None, settings: Settings, *, record_id: int | None = None, file: Path | None = None
) -> ResolvedBackup:
    """Find a backup by its id (or the newest one when neither is given), or by its file."""
    if file is not None:
        metadata = dumps.read_metadata(file)
        record = None
        if database is not None:
            try:
                async with database.sessionmaker() as session:
                    record = await session.scalar(
                        select(BackupRecord).where(
                            BackupRecord.sha256 == metadata.get("sha256"), BackupRecord.pruned_at.is_(None)
                        )
                    )
            except SQLAlchemyError:  # restoring onto an empty or broken database: the file is enough
                record = None
        return ResolvedBackup(file, metadata, record.id if record else None, record.sha256 if record else None)
    if database is None:
        raise BackupNotFound("give the backup's file when the database is not available")
    if record_id is None:
        record = await latest_succeeded(database)
        if record is None:
            raise BackupNotFound("there is no successful backup yet: run `posomni backup create`")
    else:
        async with database.sessionmaker() as session:
            record = await session.get(BackupRecord, record_id)
        if record is None:
            raise BackupNotFound(f"there is no backup {record_id}")
    if record.status != "succeeded" or record.pruned_at is not None:
        state = "was removed by retention" if record.pruned_at else f"is {record.status}"
        raise BackupNotFound(f"backup {record.id} {state}")
    path = resolve_location(record, settings.backup_dir)
    if not path.is_file():
        raise BackupFailed(f"the file of backup {record.id} is missing: {path.name}")
    return ResolvedBackup(path, dumps.read_metadata(path), record.id, record.sha256)


async def apply_retention(
    database: Database, settings: Settings, *, dry_run: bool = False, now: datetime | None = None
) -> list[BackupRecord]:
    """Delete the files retention does not keep (and their metadata); mark their rows pruned."""
    async with database.unit_of_work() as session:
        records = list(
            await session.scalars(
                select(BackupRecord).where(
                    BackupRecord.status == "succeeded",
                    BackupRecord.pruned_at.is_(None),
                    BackupRecord.finished_at.is_not(None),
                )
            )
        )
        keep = to_keep(
            [Candidate(r.id, r.finished_at, r.verified_at is not None) for r in records if r.finished_at],
            keep_daily=settings.backup_keep_daily,
            keep_weekly=settings.backup_keep_weekly,
            timezone=settings.store_timezone,
        )
        removed = sorted((r for r in records if r.id not in keep), key=lambda r: r.id)
        if dry_run:
            return removed
        for record in removed:
            path = resolve_location(record, settings.backup_dir)
            dumps.remove_quietly(path, dumps.metadata_path(path))
            record.pruned_at = now or utcnow()
    if not dry_run:
        _remove_stale_partials(settings.backup_dir, now or utcnow())
        if removed:
            log.info("backups_pruned", ids=[r.id for r in removed])
    return removed


def _remove_stale_partials(directory: Path, now: datetime) -> None:
    # A crash mid-backup leaves a .partial file; after a day no backup can still be writing it.
    cutoff = (now - STALE_PARTIAL).timestamp()
    for partial in directory.glob("posomni-*.partial"):
        if partial.stat().st_mtime < cutoff:
            dumps.remove_quietly(partial)
