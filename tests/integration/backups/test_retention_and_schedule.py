"""Retention (daily and weekly counts, with fake timestamps), the worker's daily schedule, and how the PostgreSQL
tools are called (the password only in the environment)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from posomni.backups import dumps, service, tasks
from posomni.backups.models import BackupRecord
from posomni.backups.retention import Candidate, to_keep
from tests.conftest import make_settings
from tests.integration.backups.support import Install, as_json, seed_with_audit

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
# A Monday noon in the store's timezone (America/New_York, UTC-5 in January).
NOW = datetime(2026, 1, 26, 17, 0, tzinfo=UTC)


def _daily(days: int) -> list[Candidate]:
    # One backup a day at 07:00 UTC (02:00 in New York), newest first: id 1 is today's.
    return [Candidate(i + 1, NOW - timedelta(days=i, hours=10)) for i in range(days)]


def test_keeps_the_newest_of_each_of_the_last_days_and_weeks() -> None:
    keep = to_keep(_daily(60), keep_daily=7, keep_weekly=4, timezone="America/New_York")
    # Days: the 7 newest. Weeks (ISO, Monday first): this week's newest is today's (id 1), then each earlier
    # week's newest is its Sunday's: 1, 8 and 15 days ago (ids 2, 9, 16).
    assert keep == {1, 2, 3, 4, 5, 6, 7} | {9, 16}


def test_days_without_a_backup_do_not_use_up_the_count() -> None:
    sparse = [Candidate(i + 1, NOW - timedelta(days=3 * i)) for i in range(10)]
    assert to_keep(sparse, keep_daily=3, keep_weekly=0, timezone="UTC") == {1, 2, 3}


def test_the_newest_and_the_newest_verified_backup_are_always_kept() -> None:
    backups = _daily(5)
    backups[3] = Candidate(4, backups[3].finished_at, verified=True)
    assert to_keep(backups, keep_daily=0, keep_weekly=0, timezone="UTC") == {1, 4}


async def _fake_backups(install: Install, ages_days: list[int]) -> list[int]:
    """Rows and files as `backup create` leaves them, with made-up times."""
    ids = []
    async with install.database.unit_of_work() as session:
        for age in ages_days:
            when = NOW - timedelta(days=age)
            record = BackupRecord(method="sqlite", status="succeeded", started_at=when, finished_at=when)
            session.add(record)
            await session.flush()
            path = install.settings.backup_dir / f"posomni-{when:%Y%m%dT%H%M%SZ}-{record.id:06d}.sqlite3"
            _write(path, "x")
            _write(dumps.metadata_path(path), "{}")
            record.location = str(path)
            ids.append(record.id)
    return ids


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


@SQLITE_ONLY
async def test_retention_deletes_the_files_it_does_not_keep_and_marks_their_rows(install: Install) -> None:
    ids = await _fake_backups(install, ages_days=list(range(20)))
    settings = make_settings(**{**install.env, "BACKUP_KEEP_DAILY": "3", "BACKUP_KEEP_WEEKLY": "2"})

    dry = await install.cli("backup", "prune", "--dry-run", "--json", BACKUP_KEEP_DAILY="3", BACKUP_KEEP_WEEKLY="2")
    would_remove = as_json(dry)["removed"]
    assert len(_files(settings.backup_dir)) == 40  # nothing removed by a dry run

    removed = [r.id for r in await service.apply_retention(install.database, settings, now=NOW)]
    assert removed == would_remove
    kept = set(ids) - set(removed)
    # 3 newest days, plus the newest of this week and of last week (Sunday, 1 day ago, is already kept).
    expected = to_keep(
        [Candidate(i, NOW - timedelta(days=n)) for i, n in zip(ids, range(20), strict=True)],
        keep_daily=3, keep_weekly=2, timezone=settings.store_timezone,
    )  # fmt: skip
    assert kept == expected
    assert len(kept) == 3
    async with install.database.sessionmaker() as session:
        rows = {r.id: r for r in await session.scalars(select(BackupRecord))}
    assert all(rows[i].pruned_at is not None for i in removed)
    assert all(rows[i].pruned_at is None for i in kept)
    assert _files(settings.backup_dir) == {
        n for i in kept for n in (Path(rows[i].location).name, Path(rows[i].location).name + ".json")
    }
    listed = as_json(await install.cli("backup", "list", "--json"))
    assert {b["id"] for b in listed} == kept


@SQLITE_ONLY
async def test_the_worker_takes_one_verified_backup_a_day_at_the_scheduled_time(install: Install) -> None:
    await seed_with_audit(install, entries=2)
    settings = make_settings(**{**install.env, "BACKUP_SCHEDULE": "02:00"})
    crypto = install.crypto
    # 01:30 in New York: yesterday's run is due (none was taken), so one is taken now.
    first = await tasks.run_if_due(install.database, settings, crypto, now=datetime(2026, 1, 26, 6, 30, tzinfo=UTC))
    assert first is not None
    # 03:00 the same morning: today's 02:00 run is due and not yet taken.
    second = await tasks.run_if_due(install.database, settings, crypto, now=datetime(2026, 1, 26, 8, 0, tzinfo=UTC))
    assert second is not None
    # Later that day: nothing more.
    assert (
        await tasks.run_if_due(install.database, settings, crypto, now=datetime(2026, 1, 26, 20, 0, tzinfo=UTC)) is None
    )
    async with install.database.sessionmaker() as session:
        records = list(await session.scalars(select(BackupRecord).order_by(BackupRecord.id)))
    assert [r.status for r in records] == ["succeeded", "succeeded"]
    assert all(r.verified_at is not None for r in records)  # each scheduled backup is also verified

    unscheduled = make_settings(**install.env)
    assert await tasks.run_if_due(install.database, unscheduled, crypto) is None


def test_the_password_reaches_pg_dump_only_through_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append({"args": args, **kwargs})
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(dumps.subprocess, "run", fake_run)
    monkeypatch.setenv("PGHOST", "elsewhere.example.com")
    target = dumps.PgTarget.from_url("postgresql+asyncpg://pos:S3cret%21pw@db.internal:6432/posomni?ssl=require")
    assert "S3cret" not in repr(target)
    dumps.pg_dump(target, Path("out.dump"), snapshot="00000003-1")
    dumps.pg_restore(target.with_database("scratch"), Path("out.dump"), clean=True)
    for call in calls:
        assert not any("S3cret" in arg or "db.internal" in arg for arg in call["args"])
        assert call["timeout"] == dumps.PG_TOOL_TIMEOUT_S
        assert call["env"]["PGPASSWORD"] == "S3cret!pw"
        assert call["env"]["PGHOST"] == "db.internal"  # never the operator's own PGHOST
        assert call["env"]["PGPORT"] == "6432"
        assert call["env"]["PGSSLMODE"] == "require"
    assert "--snapshot=00000003-1" in calls[0]["args"]
    assert calls[0]["env"]["PGDATABASE"] == "posomni"
    assert {"--clean", "--if-exists", "--single-transaction", "--dbname=scratch"} <= set(calls[1]["args"])


def test_a_failing_tool_reports_its_error_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", 'pg_dump: error: password authentication failed for user "pos"')

    monkeypatch.setattr(dumps.subprocess, "run", fake_run)
    target = dumps.PgTarget.from_url("postgresql+asyncpg://pos:S3cret@db.internal/posomni")
    with pytest.raises(dumps.BackupFailed, match="password authentication failed") as failure:
        dumps.pg_dump(target, Path("out.dump"))
    assert "S3cret" not in failure.value.message
