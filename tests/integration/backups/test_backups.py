"""Backups end to end through the CLI, on SQLite and PostgreSQL: create, verify in a scratch database, restore."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update

from posomni import migrate
from posomni.audit.models import AuditEntry
from posomni.backups import dumps
from posomni.backups.models import BackupRecord
from posomni.catalog.models import Barcode
from posomni.cli import app
from posomni.database import Database
from tests.integration.backups.support import Install, as_json, runner, seed_with_audit
from tests.support import running_app

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


async def _count(database: Database, model: type) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _record(database: Database, record_id: int) -> BackupRecord:
    async with database.sessionmaker() as session:
        record = await session.get(BackupRecord, record_id)
    assert record is not None
    return record


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncated_offsite_copy(backup: Path, offsite: Path) -> Path:
    offsite.mkdir()
    copy = offsite / backup.name
    copy.write_bytes(backup.read_bytes()[:-10])
    (offsite / (backup.name + ".json")).write_text(_read(backup.with_name(backup.name + ".json")))
    return copy


def _checks(document: dict[str, object]) -> dict[str, bool]:
    return {c["check"]: c["ok"] for c in document["checks"]}  # type: ignore[attr-defined]


async def test_create_then_verify_passes_and_is_recorded(install: Install) -> None:
    await seed_with_audit(install)
    created = await install.cli("backup", "create", "--json")
    assert created.exit_code == 0, created.output
    result = as_json(created)
    # Password hashes and encrypted personal data inside: readable by the service's user only.
    assert _mode(Path(result["file"])) == 0o600
    assert result["row_counts"]["audit_log"] == 12
    assert result["row_counts"]["users"] == 4
    assert result["revision"] is not None
    assert install.env["AUDIT_LOG_ENCRYPTION_KEY"] not in _read(Path(result["file"] + ".json"))

    verified = await install.cli("backup", "verify", "--latest", "--json")
    assert verified.exit_code == 0, verified.output
    report = as_json(verified)
    assert report["ok"] is True
    assert _checks(report) == dict.fromkeys(
        ["checksum", "restore", "revision", "row counts", "audit chains", "migrations"], True
    )
    record = await _record(install.database, result["id"])
    assert record.status == "succeeded"
    assert record.verified_at is not None
    assert record.verify_error is None

    listed = as_json(await install.cli("backup", "list", "--json"))
    assert [(b["id"], b["status"], b["verified_at"] is not None) for b in listed] == [(result["id"], "succeeded", True)]
    if install.database.kind == "postgresql":
        async with install.database.engine.connect() as connection:
            scratch = await connection.scalar(
                text("SELECT count(*) FROM pg_database WHERE datname LIKE 'posomni_verify_%'")
            )
        assert scratch == 0  # the scratch database was dropped


@SQLITE_ONLY
async def test_a_corrupted_backup_file_fails_verification_on_its_checksum(install: Install) -> None:
    await seed_with_audit(install)
    result = as_json(await install.cli("backup", "create", "--json"))
    _flip_a_byte(Path(result["file"]))

    verified = await install.cli("backup", "verify", str(result["id"]), "--json")
    assert verified.exit_code == 1
    report = as_json(verified)
    assert report["ok"] is False
    assert _checks(report) == {"checksum": False}  # nothing restored from a damaged file
    record = await _record(install.database, result["id"])
    assert record.verified_at is None
    assert "checksum" in (record.verify_error or "")


async def test_a_tampered_audit_chain_inside_the_backup_fails_verification(install: Install) -> None:
    await seed_with_audit(install)
    # Someone with database access edits an audit entry; the backup faithfully keeps the broken chain.
    async with install.database.unit_of_work() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(action="test.harmless"))
    result = as_json(await install.cli("backup", "create", "--json"))

    verified = await install.cli("backup", "verify", str(result["id"]), "--json")
    assert verified.exit_code == 1
    checks = _checks(as_json(verified))
    assert checks == {
        "checksum": True, "restore": True, "revision": True, "row counts": True, "audit chains": False,
        "migrations": True,
    }  # fmt: skip
    record = await _record(install.database, result["id"])
    assert "breaks at entry 3" in (record.verify_error or "")


async def test_restore_with_yes_brings_back_deleted_rows(install: Install) -> None:
    await seed_with_audit(install)
    result = as_json(await install.cli("backup", "create", "--json"))
    barcodes = await _count(install.database, Barcode)
    assert barcodes > 0
    async with install.database.unit_of_work() as session:
        await session.execute(delete(Barcode))
    assert await _count(install.database, Barcode) == 0

    refused = await install.cli("backup", "restore", str(result["id"]))
    assert refused.exit_code == 1
    assert "--yes" in refused.output
    assert await _count(install.database, Barcode) == 0

    # The app's own connections must be closed, as with the real app stopped.
    await install.database.dispose()
    restored = await install.cli("backup", "restore", str(result["id"]), "--yes", "--json")
    assert restored.exit_code == 0, restored.output
    document = as_json(restored)
    assert _mode(Path(document["safety_copy"])) == 0o600
    assert await _count(install.database, Barcode) == barcodes
    # The restored row said "running" (it was taken mid-backup); it is brought up to date from the metadata.
    record = await _record(install.database, result["id"])
    assert record.status == "succeeded"
    assert record.sha256 == result["sha256"]
    async with install.database.sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[-1] == "backups.restored"
    audit_check = await install.cli("audit", "verify")
    assert audit_check.exit_code == 0, audit_check.output
    # New backups after the restore get fresh ids (on PostgreSQL the sequence was moved past the restored rows).
    again = await install.cli("backup", "create", "--json")
    assert again.exit_code == 0, again.output
    assert as_json(again)["id"] > result["id"]


@POSTGRES_ONLY
async def test_restore_is_refused_while_the_app_is_connected(install: Install) -> None:
    await seed_with_audit(install, entries=2)
    result = as_json(await install.cli("backup", "create", "--json"))
    app_database = Database(install.database.url, pool_size=1)
    try:
        async with app_database.engine.connect() as connection:  # an app process, idle but connected
            await connection.execute(text("SELECT 1"))
            refused = await install.cli("backup", "restore", str(result["id"]), "--yes")
    finally:
        await app_database.dispose()
    assert refused.exit_code == 1
    assert "stop the app and the worker" in refused.output


@SQLITE_ONLY
async def test_restore_from_a_file_refuses_a_damaged_one(install: Install) -> None:
    await seed_with_audit(install, entries=2)
    result = as_json(await install.cli("backup", "create", "--json"))
    copy = _truncated_offsite_copy(Path(result["file"]), install.settings.data_dir / "offsite")
    refused = await install.cli("backup", "restore", "--file", str(copy), "--yes")
    assert refused.exit_code == 1
    assert "SHA-256 does not match" in refused.output


async def test_health_backup_reports_the_new_backup_and_whether_it_was_verified(install: Install) -> None:
    await seed_with_audit(install, entries=2)
    async with running_app(install.settings, install.database) as (_, http):
        before = (await http.get("/health/backup")).json()
        assert before["message"] == "no backup yet"

        result = as_json(await install.cli("backup", "create", "--json"))
        created = (await http.get("/health/backup")).json()
        assert created["status"] == "ok"
        assert Path(created["location"]).name == Path(result["file"]).name
        assert created["size_bytes"] == result["size_bytes"]
        assert created["age_hours"] < 0.1
        assert created["verified_at"] is None
        assert "not verified yet" in created["message"]

        assert (await install.cli("backup", "verify", "--latest")).exit_code == 0
        verified = (await http.get("/health/backup")).json()
        assert verified["verified_at"] is not None
        assert verified["message"] == "recent backup present"


@pytest.mark.parametrize("args", [["restore"], ["restore", "1", "--file", "x.dump"]])
def test_restore_needs_exactly_one_target(args: list[str]) -> None:
    result = runner.invoke(app, ["backup", *args])
    assert result.exit_code == 2


def _write_old_metadata(target: Path, kind: str, counts: dict[str, int], revision: str | None) -> None:
    dumps.write_metadata(
        target,
        {
            "format": dumps.METADATA_FORMAT, "record_id": 99, "file": target.name, "database_kind": kind,
            "started_at": "2025-01-01T00:00:00+00:00", "finished_at": "2025-01-01T00:00:01+00:00",
            "revision": revision, "app_version": "0.0.9", "size_bytes": target.stat().st_size,
            "sha256": dumps.sha256_file(target), "row_counts": counts,
        },
    )  # fmt: skip


async def _old_backup(database: Database, directory: Path) -> Path:
    """A backup as an older version wrote it: a dump at an older revision, with its metadata."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    if database.kind == "sqlite":
        target = directory / "posomni-20250101T000000Z-000099.sqlite3"
        await asyncio.to_thread(dumps.sqlite_copy, dumps.sqlite_path(database.url), target)
        counts, revision = await asyncio.to_thread(dumps.sqlite_counts, target)
    else:
        target = directory / "posomni-20250101T000000Z-000099.dump"
        async with database.engine.connect() as connection:
            counts = await dumps.row_counts(connection)
            revision = await dumps.revision_of(connection)
        await asyncio.to_thread(dumps.pg_dump, dumps.PgTarget.from_url(database.url), target)
    await asyncio.to_thread(_write_old_metadata, target, database.kind, counts, revision)
    return target


async def test_a_backup_of_an_older_revision_verifies_and_restores_to_head(install: Install) -> None:
    await seed_with_audit(install, entries=4)
    head = migrate.head_revision()
    previous = f"{int(head or '0') - 1:04d}"
    await migrate.downgrade(install.database.engine, previous)
    await install.database.dispose()
    backup = await _old_backup(install.database, install.settings.backup_dir)
    await migrate.upgrade(install.database.engine)
    async with install.database.unit_of_work() as session:
        await session.execute(delete(Barcode))

    verified = await install.cli("backup", "verify", "--file", str(backup), "--json")
    assert verified.exit_code == 0, verified.output
    steps = {c["check"]: c["detail"] for c in as_json(verified)["checks"]}
    assert steps["migrations"] == f"upgrades from {previous} to head {head}"

    await install.database.dispose()
    restored = await install.cli("backup", "restore", "--file", str(backup), "--yes", "--json")
    assert restored.exit_code == 0, restored.output
    assert as_json(restored)["migrated_to"] == head
    assert (await migrate.status(install.database.engine)).up_to_date
    assert await _count(install.database, Barcode) > 0
    record = await _record(install.database, 99)  # the backup's own row, rebuilt from its metadata
    assert record.status == "succeeded"
    assert record.verified_at is not None  # its verification above was kept in the metadata
