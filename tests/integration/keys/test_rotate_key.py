"""Key rotation over a few thousand rows, with a crash half-way and a resumed run: nothing lost or unreadable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from posomni.audit import service as audit
from posomni.audit.models import AuditEntry
from posomni.auth.principal import Actor
from posomni.cli import app as cli
from posomni.customers.models import Customer, dob_aad
from posomni.database import Database
from posomni.keys import service as keys
from posomni.security.crypto import EncryptionService, StaticKeyProvider, generate_key

AUDIT_ROWS = 2000
CUSTOMERS = 300


async def _fill(database: Database, crypto: EncryptionService) -> None:
    actor = Actor(user_id=None, role=None, store_id=None, name="fill")
    async with database.unit_of_work() as session:
        for i in range(AUDIT_ROWS):
            await audit.record(session, crypto, actor, "test.row", store_id=None, details={"i": i})
        for i in range(CUSTOMERS):
            customer = Customer(name=f"c{i}", phone=f"555{i:07d}")
            session.add(customer)
            await session.flush()
            customer.date_of_birth_encrypted = crypto.encrypt(f"1980-01-{i % 28 + 1:02d}", aad=dob_aad(customer.id))


async def _key_ids(database: Database, crypto: EncryptionService) -> set[str]:
    async with database.sessionmaker() as session:
        tokens = list(await session.scalars(select(AuditEntry.payload_encrypted)))
        tokens += list(await session.scalars(select(Customer.date_of_birth_encrypted)))
    return {crypto.key_id_of(t) for t in tokens if t}


async def test_rotation_crashes_half_way_resumes_and_loses_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key, new_key = generate_key(), generate_key()
    old_only = EncryptionService(StaticKeyProvider.from_settings(old_key))
    await _fill(database, old_only)
    rotating = EncryptionService(StaticKeyProvider.from_settings(new_key, old_key))

    # Crash after about half of the audit rows were re-encrypted.
    real = EncryptionService.reencrypt
    calls = {"n": 0}

    def crashing(self: EncryptionService, token: str, *, aad: str, label: str | None = None) -> str:
        calls["n"] += 1
        if calls["n"] == AUDIT_ROWS // 2 + 17:
            raise RuntimeError("power cut")
        return real(self, token, aad=aad, label=label)

    monkeypatch.setattr(EncryptionService, "reencrypt", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        await keys.rotate(database, rotating, batch_size=250)
    monkeypatch.setattr(EncryptionService, "reencrypt", real)
    # Committed batches are under the new key, the rest still under the old one.
    assert await _key_ids(database, rotating) == {rotating.current_key_id, old_only.current_key_id}

    reports = await keys.rotate(database, rotating, batch_size=250)
    by_name = {r.name: r for r in reports}
    assert by_name["audit_log.payload"].total == AUDIT_ROWS
    assert by_name["audit_log.payload"].already_current == AUDIT_ROWS // 2  # the batches that committed
    assert by_name["audit_log.payload"].rotated == AUDIT_ROWS // 2
    assert by_name["customers.date_of_birth"].rotated == CUSTOMERS
    assert not any(r.unreadable for r in reports)

    verified = await keys.verify_current_key_only(database, new_key)
    assert sum(r.total for r in verified) == AUDIT_ROWS + CUSTOMERS
    assert not any(r.unreadable for r in verified)
    assert await _key_ids(database, rotating) == {rotating.current_key_id}
    # The audit chain still holds: its hashes cover the decrypted details, not the ciphertext.
    new_only = EncryptionService(StaticKeyProvider.from_settings(new_key))
    async with database.sessionmaker() as session:
        assert all(r.ok for r in await audit.verify_all(session, new_only))
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == AUDIT_ROWS


async def test_rotate_key_command_dry_run_then_real(database: Database, db_url: str, tmp_path: Path) -> None:
    old_key, new_key = generate_key(), generate_key()
    await _fill(database, EncryptionService(StaticKeyProvider.from_settings(old_key)))
    env = {
        "POS_ENV": "test", "DATABASE_URL": db_url, "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
        "AUDIT_LOG_ENCRYPTION_KEY": new_key, "OLD_AUDIT_LOG_ENCRYPTION_KEY": old_key,
    }  # fmt: skip
    args = ["rotate-key", "--env-file", str(tmp_path / "none"), "--batch-size", "700"]
    runner = CliRunner()
    dry = await asyncio.to_thread(runner.invoke, cli, [*args, "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    assert '"rotated": 2000' in dry.output
    assert await _key_ids(database, EncryptionService(StaticKeyProvider.from_settings(old_key))) != set()
    real = await asyncio.to_thread(runner.invoke, cli, args, env=env)
    assert real.exit_code == 0, real.output
    assert "new key alone" in real.output
    crypto = EncryptionService(StaticKeyProvider.from_settings(new_key))
    assert await _key_ids(database, crypto) == {crypto.current_key_id}
    # Without the old key, a value still under it is reported by row, and the command fails.
    env_without_old = {**env, "OLD_AUDIT_LOG_ENCRYPTION_KEY": ""}
    async with database.unit_of_work() as session:
        session.add(Customer(name="late", phone="5559999999", date_of_birth_encrypted=EncryptionService(
            StaticKeyProvider.from_settings(old_key)).encrypt("1990-01-01", aad=dob_aad(999))))  # fmt: skip
    failed = await asyncio.to_thread(runner.invoke, cli, args, env=env_without_old)
    assert failed.exit_code == 1
    assert "customers.date_of_birth of row" in failed.output
