"""Health of every component the register depends on. Only the database is critical: without it nothing sells;
a degraded optional component (Redis absent, old backup) is reported, not fatal."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from posomni import __version__, migrate
from posomni.backoffice.client import BackOfficeClient
from posomni.backups.models import BackupRecord
from posomni.cache.service import CacheService
from posomni.config import Settings
from posomni.database import Database
from posomni.health.schemas import BackupHealth, Component, ComponentStatus, HealthReport
from posomni.kit.time import utcnow
from posomni.outbox import service as outbox

DB_CHECK_TIMEOUT_S = 3.0
DISK_WARN_FREE_BYTES = 1 << 30  # 1 GiB
DISK_WARN_FREE_RATIO = 0.05


async def check_database(database: Database) -> Component:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_S):
            await database.ping()
            state = await migrate.status(database.engine)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return Component(status="down", critical=True, details={"kind": database.kind, "error": _describe(exc)})
    details: dict[str, Any] = {
        "kind": database.kind,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "revision": state.current,
        "head": state.head,
    }
    if not state.up_to_date:
        details["error"] = "migrations pending: run `posomni db migrate`"
        return Component(status="down", critical=True, details=details)
    return Component(status="ok", critical=True, details=details)


def _describe(exc: BaseException) -> str:
    # The exception text of a driver can carry the connection string; the class name says enough here.
    if isinstance(exc, TimeoutError):
        return f"no answer within {DB_CHECK_TIMEOUT_S:g}s"
    original = getattr(exc, "orig", None)
    return type(original or exc).__name__


def check_memory() -> Component:
    process = psutil.Process()
    info = process.memory_info()
    return Component(
        status="ok",
        critical=False,
        details={
            "rss_bytes": info.rss,
            "vms_bytes": info.vms,
            "python_allocated_blocks": sys.getallocatedblocks(),
            "system_available_bytes": psutil.virtual_memory().available,
        },
    )


def check_disk(path: Path) -> Component:
    target = path if path.exists() else Path.cwd()
    usage = shutil.disk_usage(target)
    ratio = usage.free / usage.total if usage.total else 0.0
    low = usage.free < DISK_WARN_FREE_BYTES or ratio < DISK_WARN_FREE_RATIO
    return Component(
        status="degraded" if low else "ok",
        critical=False,
        details={
            "path": str(path),
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            "free_percent": round(ratio * 100, 1),
        },
    )


async def backup_health(database: Database, settings: Settings) -> BackupHealth:
    async with database.sessionmaker() as session:
        last = await session.scalar(
            select(BackupRecord)
            .where(BackupRecord.status == "succeeded", BackupRecord.pruned_at.is_(None))
            .order_by(BackupRecord.finished_at.desc())
            .limit(1)
        )
    max_age = settings.backup_max_age_hours
    if last is None or last.finished_at is None:
        return BackupHealth(
            status="degraded",
            last_success_at=None,
            age_hours=None,
            size_bytes=None,
            location=None,
            max_age_hours=max_age,
            message="no backup yet",
        )
    age = (utcnow() - last.finished_at).total_seconds() / 3600
    old = age > max_age
    # A backup whose verification failed (`posomni backup verify`) may not restore: as bad as an old one.
    if old:
        message = f"last backup is older than {max_age:g} hours"
    elif last.verify_error:
        message = "the last backup failed verification"
    else:
        message = "recent backup present" + ("" if last.verified_at else " (not verified yet)")
    return BackupHealth(
        status="degraded" if old or last.verify_error else "ok",
        last_success_at=last.finished_at,
        age_hours=round(age, 2),
        size_bytes=last.size_bytes,
        location=last.location,
        max_age_hours=max_age,
        message=message,
        verified_at=last.verified_at,
        verify_error=last.verify_error,
    )


async def check_backup(database: Database, settings: Settings) -> Component:
    try:
        report = await backup_health(database, settings)
    except SQLAlchemyError as exc:
        return Component(status="degraded", critical=False, details={"error": _describe(exc)})
    return Component(status=report.status, critical=False, details=report.model_dump(mode="json"))


async def check_outbox(
    database: Database, backoffice: BackOfficeClient | None, *, stale_after: timedelta = outbox.DEFAULT_STALE_AFTER
) -> Component:
    try:
        async with database.sessionmaker() as session:
            report = await outbox.health(
                session, stale_after=stale_after, backoffice=await backoffice.health() if backoffice else None
            )
    except (SQLAlchemyError, OSError) as exc:
        return Component(status="degraded", critical=False, details={"error": _describe(exc)})
    return Component(status=report.status, critical=False, details=report.model_dump(mode="json"))


async def health_report(
    database: Database, cache: CacheService, settings: Settings, backoffice: BackOfficeClient | None = None
) -> HealthReport:
    db = await check_database(database)
    redis = await cache.ping()
    components: dict[str, Component] = {
        "database": db,
        "redis": Component(status=redis.pop("status"), critical=False, details=redis),
        "memory": check_memory(),
        "disk": check_disk(settings.data_dir),
    }
    unavailable = Component(status="degraded", critical=False, details={"error": "database unavailable"})
    components["backup"] = await check_backup(database, settings) if db.status == "ok" else unavailable
    stale_after = timedelta(minutes=settings.outbox_max_age_minutes)
    components["outbox"] = (
        await check_outbox(database, backoffice, stale_after=stale_after) if db.status == "ok" else unavailable
    )
    return HealthReport(
        status=overall(components),
        version=__version__,
        environment=settings.env.value,
        checked_at=utcnow(),
        components=components,
    )


def overall(components: dict[str, Component]) -> ComponentStatus:
    if any(c.critical and c.status == "down" for c in components.values()):
        return "down"
    if any(c.status != "ok" for c in components.values()):
        return "degraded"
    return "ok"
