"""The audit log: written with the action, hash-chained, verified, tamper detected, purged past retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from posomni import bootstrap
from posomni.audit import service as audit
from posomni.audit.models import AuditChainHead, AuditEntry
from posomni.auth.principal import Actor
from posomni.config import Settings
from posomni.database import Database
from posomni.kit.time import utcnow, years_before
from posomni.security.crypto import EncryptionService
from tests.support import running_app, seed_demo, sign_in

ACTOR = Actor(user_id=None, role=None, store_id=1, name="test")


@pytest.fixture
def crypto(settings: Settings) -> EncryptionService:
    return bootstrap.encryption(settings)


async def _write(database: Database, crypto: EncryptionService, count: int, **kwargs: Any) -> None:
    async with database.unit_of_work() as session:
        for i in range(count):
            await audit.record(session, crypto, ACTOR, "test.action", details={"n": i, "when": utcnow()}, **kwargs)


async def _verify(database: Database, crypto: EncryptionService) -> list[audit.ChainReport]:
    async with database.sessionmaker() as session:
        return await audit.verify_all(session, crypto)


async def test_entries_chain_per_store_and_verify(database: Database, crypto: EncryptionService) -> None:
    await seed_demo(database)
    await _write(database, crypto, 5)
    await _write(database, crypto, 3, store_id=None)
    reports = {r.chain: r for r in await _verify(database, crypto)}
    assert reports["store:1"].ok
    assert reports["store:1"].entries_checked == 5
    assert reports["global"].ok
    assert reports["global"].entries_checked == 3
    async with database.sessionmaker() as session:
        rows = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.chain == "store:1").order_by(AuditEntry.seq))
        )
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert all(rows[i].prev_hash == rows[i - 1].entry_hash for i in range(1, 5))
    # Details are stored only encrypted.
    assert all('"n"' not in r.payload_encrypted for r in rows)


async def test_entries_written_at_once_from_an_empty_chain_line_up(
    database: Database, crypto: EncryptionService
) -> None:
    # Eight transactions append to a chain that has no head yet, all at once: one creates the head, the others
    # wait for it, and the entries take seq 1..8 in turn, each linked to the one before.
    async def one(n: int) -> None:
        async with database.unit_of_work() as session:
            await audit.record(session, crypto, ACTOR, "test.action", store_id=None, details={"n": n})
            await asyncio.sleep(0.01)  # the head stays locked a little while the others queue on it

    await asyncio.gather(*(one(n) for n in range(8)))

    [report] = [r for r in await _verify(database, crypto) if r.chain == "global"]
    assert report.ok, report.problem
    assert (report.entries_checked, report.last_seq) == (8, 8)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"action": "test.innocent"}, "changed"),
        ({"actor_id": 4}, "changed"),
        ({"target_id": "other"}, "changed"),
    ],
)
async def test_an_edited_row_is_detected(
    database: Database, crypto: EncryptionService, change: dict[str, Any], problem: str
) -> None:
    await seed_demo(database)
    await _write(database, crypto, 6)
    async with database.unit_of_work() as session:
        await session.execute(
            update(AuditEntry).where(AuditEntry.chain == "store:1", AuditEntry.seq == 3).values(**change)
        )
    report = next(r for r in await _verify(database, crypto) if r.chain == "store:1")
    assert not report.ok
    assert report.first_broken_seq == 3
    assert problem in (report.problem or "")


async def test_swapped_ciphertexts_are_detected(database: Database, crypto: EncryptionService) -> None:
    await seed_demo(database)
    await _write(database, crypto, 3)
    async with database.unit_of_work() as session:
        rows = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.chain == "store:1").order_by(AuditEntry.seq))
        )
        rows[0].payload_encrypted, rows[1].payload_encrypted = rows[1].payload_encrypted, rows[0].payload_encrypted
    report = next(r for r in await _verify(database, crypto) if r.chain == "store:1")
    assert not report.ok
    assert report.first_broken_seq == 1
    assert "cannot be decrypted" in (report.problem or "")


@pytest.mark.parametrize("seq", [1, 4, 8])
async def test_a_deleted_row_is_detected(database: Database, crypto: EncryptionService, seq: int) -> None:
    await seed_demo(database)
    await _write(database, crypto, 8)
    async with database.unit_of_work() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.chain == "store:1", AuditEntry.seq == seq))
    report = next(r for r in await _verify(database, crypto) if r.chain == "store:1")
    assert not report.ok
    assert report.first_broken_seq == seq


async def test_verify_endpoint_for_auditors(settings: Settings, database: Database, crypto: EncryptionService) -> None:
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        auditor = await sign_in(http, "auditor")
        cashier = await sign_in(http, "cashier")
        assert (await http.get("/audit/verify", headers=cashier)).status_code == 403
        ok = await http.get("/audit/verify", headers=auditor)
        assert ok.status_code == 200
        assert ok.json()["ok"] is True
        async with database.unit_of_work() as session:
            await session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(actor_role="admin"))
        broken = (await http.get("/audit/verify", headers=auditor)).json()
        assert broken["ok"] is False
        assert any(c["first_broken_seq"] == 1 for c in broken["chains"])


async def test_auditors_list_and_filter_with_decrypted_details(settings: Settings, database: Database) -> None:
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        await sign_in(http, "cashier")
        await http.post("/auth/login", json={"username": "cashier", "password": "wrong-password-here"})
        auditor = await sign_in(http, "auditor")
        entries = (await http.get("/audit/entries", params={"action": "auth."}, headers=auditor)).json()
        actions = [e["action"] for e in entries]
        assert "auth.login" in actions
        assert "auth.login_failed" in actions
        failed = next(e for e in entries if e["action"] == "auth.login_failed")
        assert failed["details"]["reason"] == "wrong_password"
        assert failed["details"]["username"] == "cashier"
        assert "wrong-password-here" not in str(entries)  # the attempted password is never recorded
        only = (await http.get("/audit/entries", params={"action": "auth.login_failed"}, headers=auditor)).json()
        assert {e["action"] for e in only} == {"auth.login_failed"}
        assert (await http.get("/audit/entries", headers=await sign_in(http, "manager"))).status_code == 403


async def test_purge_refuses_anything_younger_than_retention(database: Database, crypto: EncryptionService) -> None:
    await seed_demo(database)
    await _write(database, crypto, 2)
    async with database.unit_of_work() as session:
        with pytest.raises(audit.RetentionViolation):
            await audit.purge(session, crypto, ACTOR, before=utcnow() - timedelta(days=365 * 6), retention_years=7)


async def test_purge_keeps_the_chain_verifiable_and_detects_a_moved_anchor(
    database: Database, crypto: EncryptionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_demo(database)
    eight_years_ago = utcnow() - timedelta(days=365 * 8 + 2)
    monkeypatch.setattr(audit, "utcnow", lambda: eight_years_ago)
    await _write(database, crypto, 4)
    monkeypatch.undo()
    await _write(database, crypto, 3)
    async with database.unit_of_work() as session:
        results = await audit.purge(
            session, crypto, ACTOR, before=years_before(utcnow(), 7) - timedelta(days=1), retention_years=7
        )
    assert [(r.chain, r.deleted, r.anchor_seq) for r in results] == [("store:1", 4, 4)]
    report = next(r for r in await _verify(database, crypto) if r.chain == "store:1")
    assert report.ok, report
    assert report.entries_checked == 4  # 3 recent entries and the purge record
    # Removing more entries and moving the anchor to hide it is detected.
    async with database.unit_of_work() as session:
        fifth = await session.scalar(select(AuditEntry).where(AuditEntry.chain == "store:1", AuditEntry.seq == 5))
        assert fifth is not None
        await session.execute(delete(AuditEntry).where(AuditEntry.chain == "store:1", AuditEntry.seq == 5))
        await session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.chain == "store:1")
            .values(anchor_seq=5, anchor_hash=fifth.entry_hash)
        )
    report = next(r for r in await _verify(database, crypto) if r.chain == "store:1")
    assert not report.ok
    assert "without a recorded purge" in (report.problem or "")


async def test_audit_verify_command(
    settings: Settings, database: Database, crypto: EncryptionService, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from posomni.cli import app as cli

    await seed_demo(database)
    await _write(database, crypto, 3)
    env = {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "AUDIT_LOG_ENCRYPTION_KEY": settings.audit_log_encryption_key.get_secret_value(),
        "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
        "POS_ENV": "test",
    }
    runner = CliRunner()
    ok = await _run_cli(runner, cli, ["audit", "verify", "--env-file", str(tmp_path / "none")], env)
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    async with database.unit_of_work() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(action="edited"))
    broken = await _run_cli(runner, cli, ["audit", "verify", "--env-file", str(tmp_path / "none")], env)
    assert broken.exit_code == 1
    assert "broken at #2" in broken.output


async def test_audit_purge_command_refuses_young_entries_before_asking(
    settings: Settings, database: Database, crypto: EncryptionService, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from posomni.cli import app as cli

    await seed_demo(database)
    await _write(database, crypto, 3)
    env = {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "AUDIT_LOG_ENCRYPTION_KEY": settings.audit_log_encryption_key.get_secret_value(),
        "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
        "POS_ENV": "test",
    }
    recent = (utcnow() - timedelta(days=365)).date().isoformat()
    args = ["audit", "purge", "--before", recent, "--env-file", str(tmp_path / "none")]
    refused = await _run_cli(CliRunner(), cli, args, env)
    assert refused.exit_code == 1
    assert "Refused" in refused.output
    assert "7 years" in refused.output
    assert "Permanently remove" not in refused.output
    async with database.sessionmaker() as session:
        assert len(list(await session.scalars(select(AuditEntry.id)))) == 3


async def _run_cli(runner: Any, cli: Any, args: list[str], env: dict[str, str]) -> Any:
    import asyncio

    # The command runs its own event loop; run it off this test's loop.
    return await asyncio.to_thread(runner.invoke, cli, args, env=env)
