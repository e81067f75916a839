"""`backup verify`: prove a backup can be restored, by restoring it into a scratch database and checking it.

The checks, in order: the file's SHA-256 equals the one recorded at creation; it restores (PostgreSQL: into a
temporary database created and dropped here, which needs the CREATEDB privilege; SQLite: a temporary copy);
its migration revision and row counts equal the metadata; every audit chain verifies with the app's keys;
and it migrates to this code's head revision. The scratch database is always removed.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from posomni import migrate
from posomni.audit import service as audit
from posomni.backups import dumps
from posomni.backups.errors import BackupFailed
from posomni.backups.models import BackupRecord
from posomni.backups.service import ResolvedBackup, describe
from posomni.config import Settings
from posomni.database import Database, create_engine
from posomni.kit.time import utcnow
from posomni.logging import get_logger
from posomni.security.crypto import EncryptionService

log = get_logger(__name__)


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class VerifyReport:
    file: Path
    record_id: int | None
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def error(self) -> str | None:
        failed = [f"{s.name}: {s.detail}" for s in self.steps if not s.ok]
        return "; ".join(failed) if failed else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "file": str(self.file),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "checks": [s.as_dict() for s in self.steps],
        }


def known_revision(revision: str | None) -> bool:
    if revision is None:
        return False
    try:
        return ScriptDirectory.from_config(migrate.alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


@asynccontextmanager
async def scratch_database(kind: str, url: str, backup: Path, work_dir: Path) -> AsyncIterator[str]:
    """The backup restored into a database nobody else uses; yields its URL (never print it: it has the
    password), and removes it afterwards whatever happened."""
    if kind == "sqlite":
        dumps.prepare_dir(work_dir)
        with tempfile.TemporaryDirectory(prefix=".verify-", dir=work_dir) as tmp:
            copy = Path(tmp) / "scratch.db"
            await asyncio.to_thread(shutil.copyfile, backup, copy)
            yield f"sqlite+aiosqlite:///{copy}"
        return
    target = dumps.PgTarget.from_url(url)
    # A random name: two verifications at once never share a scratch database.
    name = f"posomni_verify_{secrets.token_hex(6)}"
    admin = create_engine(url, pool_size=1)
    try:
        async with admin.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            await asyncio.to_thread(dumps.pg_restore, target.with_database(name), backup, clean=False)
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _check_restored(
    scratch: Database, metadata: dict[str, Any], crypto: EncryptionService, steps: list[Step]
) -> None:
    async with scratch.engine.connect() as connection:
        revision = await dumps.revision_of(connection)
        counts = await dumps.row_counts(connection)
    recorded = metadata.get("revision")
    steps.append(Step("revision", revision == recorded, f"{revision} (recorded {recorded})"))

    expected: dict[str, int] = metadata.get("row_counts") or {}
    differences = [
        f"{name}: {counts.get(name)} (recorded {expected.get(name)})"
        for name in sorted(set(counts) | set(expected))
        if counts.get(name) != expected.get(name)
    ]
    rows = sum(counts.values())
    steps.append(
        Step(
            "row counts",
            not differences and bool(expected),
            "; ".join(differences[:10]) if differences else f"{len(counts)} tables, {rows} rows as recorded",
        )
    )

    async with scratch.sessionmaker() as session:
        chains = await audit.verify_all(session, crypto)
    broken = [c for c in chains if not c.ok]
    entries = sum(c.entries_checked for c in chains)
    steps.append(
        Step(
            "audit chains",
            not broken,
            "; ".join(f"{c.chain} breaks at entry {c.first_broken_seq}: {c.problem}" for c in broken)
            or f"{len(chains)} chain(s), {entries} entries verified",
        )
    )

    head = migrate.head_revision()
    if revision == head:
        steps.append(Step("migrations", True, f"at head {head}"))
    elif not known_revision(revision):
        steps.append(Step("migrations", False, f"revision {revision} is unknown to this version of POS-Omni"))
    else:
        await migrate.upgrade(scratch.engine)
        after = (await migrate.status(scratch.engine)).current
        steps.append(Step("migrations", after == head, f"upgrades from {revision} to head {after}"))


async def verify_backup(
    database: Database | None, settings: Settings, crypto: EncryptionService, backup: ResolvedBackup
) -> VerifyReport:
    started = time.perf_counter()
    report = VerifyReport(backup.file, backup.record_id)
    url = database.url if database is not None else settings.database_url.get_secret_value()
    actual = await asyncio.to_thread(dumps.sha256_file, backup.file)
    expected = {backup.metadata.get("sha256")} | ({backup.record_sha256} if backup.record_sha256 else set())
    same = expected == {actual}
    report.steps.append(
        Step(
            "checksum",
            same,
            "SHA-256 matches" if same else f"SHA-256 is {actual[:16]}…, recorded {sorted(str(e) for e in expected)}",
        )
    )
    kind = str(backup.metadata.get("database_kind"))
    if same and kind != settings.database_kind:
        report.steps.append(Step("restore", False, f"a {kind} backup cannot be checked on {settings.database_kind}"))
    elif same:
        try:
            async with scratch_database(kind, url, backup.file, settings.backup_dir) as scratch_url:
                report.steps.append(Step("restore", True, "restored into a scratch database"))
                scratch = Database(scratch_url, pool_size=2)
                try:
                    await _check_restored(scratch, backup.metadata, crypto, report.steps)
                finally:
                    await scratch.dispose()
        except (BackupFailed, SQLAlchemyError, OSError, CommandError) as exc:
            report.steps.append(Step("restore" if len(report.steps) == 1 else "check", False, describe(exc, url)))
    report.seconds = time.perf_counter() - started
    await _record(database, backup, report)
    log.info("backup_verified", record_id=backup.record_id, ok=report.ok, seconds=round(report.seconds, 3))
    return report


async def _record(database: Database | None, backup: ResolvedBackup, report: VerifyReport) -> None:
    now = utcnow()
    if database is not None and backup.record_id is not None:
        async with database.unit_of_work() as session:
            record = await session.get(BackupRecord, backup.record_id)
            if record is not None:
                record.verified_at = now if report.ok else None
                record.verify_error = None if report.ok else (report.error or "")[:2000]
    # Kept beside the file too, so a restore into an empty database can bring the verified state back.
    metadata = dict(backup.metadata)
    metadata["verification"] = {"at": now.isoformat(), "ok": report.ok, "error": report.error}
    try:
        dumps.write_metadata(backup.file, metadata)
    except OSError:
        log.warning("backup_metadata_not_updated", file=backup.file.name)
