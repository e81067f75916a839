"""`posomni keys confirm-backup` and `posomni keys drill`: who backed the key up and where; proof that the key
taken from the backup decrypts the real data."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from posomni.audit import service as audit
from posomni.audit.models import AuditEntry
from posomni.database import Database
from posomni.keys import recovery
from posomni.security.crypto import generate_key
from tests.integration.backups.support import Install, as_json, seed_with_audit


def _key_file(directory: Path, key: str) -> Path:
    path = directory / "key-from-the-safe.txt"
    path.write_text(key + "\n", encoding="utf-8")
    return path


async def _entries(database: Database, action: str) -> list[AuditEntry]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_confirm_backup_records_who_and_where_under_the_key_id_never_the_key(install: Install) -> None:
    result = await install.cli("keys", "confirm-backup", "--by", "Dana Owner", "--locations", "office safe, 1Password")
    assert result.exit_code == 0, result.output
    key_id = install.crypto.current_key_id
    assert key_id in result.output
    confirmation = await recovery.latest_confirmation(install.database, install.crypto, key_id)
    assert confirmation is not None
    assert (confirmation.by, confirmation.locations) == ("Dana Owner", ["office safe", "1Password"])
    [entry] = await _entries(install.database, recovery.CONFIRMED)
    assert (entry.target_type, entry.target_id) == ("encryption_key", key_id)
    details = audit.decrypt_details(install.crypto, entry)
    assert install.env["AUDIT_LOG_ENCRYPTION_KEY"] not in str(details)


async def test_confirm_backup_needs_two_places(install: Install) -> None:
    result = await install.cli("keys", "confirm-backup", "--by", "Dana", "--locations", "office safe")
    assert result.exit_code == 1
    assert "at least 2" in result.output
    assert await _entries(install.database, recovery.CONFIRMED) == []


async def test_drill_with_the_right_key_passes_and_is_recorded(install: Install, tmp_path: Path) -> None:
    await seed_with_audit(install, entries=30)
    key = _key_file(tmp_path, install.env["AUDIT_LOG_ENCRYPTION_KEY"])
    result = await install.cli("keys", "drill", "--key-file", str(key), "--by", "Dana", "--json")
    assert result.exit_code == 0, result.output
    document = as_json(result)
    assert document["ok"] is True
    assert document["sampled"] == recovery.DRILL_SAMPLE  # oldest and newest halves of the 30 audit entries
    assert document["decrypted"] == document["sampled"]
    assert await recovery.latest_drill(install.database, install.crypto.current_key_id) is not None
    assert install.env["AUDIT_LOG_ENCRYPTION_KEY"] not in result.output


async def test_drill_with_the_key_typed_at_the_hidden_prompt(install: Install) -> None:
    await seed_with_audit(install, entries=3)
    key = install.env["AUDIT_LOG_ENCRYPTION_KEY"]
    result = await install.cli("keys", "drill", input=key + "\n")
    assert result.exit_code == 0, result.output
    assert "Drill passed" in result.output
    assert key not in result.output  # the prompt does not echo it


async def test_drill_with_a_wrong_key_fails_and_the_failure_is_recorded(install: Install, tmp_path: Path) -> None:
    await seed_with_audit(install, entries=6)
    key_id = install.crypto.current_key_id
    ok = await install.cli(
        "keys", "drill", "--key-file", str(_key_file(tmp_path, install.env["AUDIT_LOG_ENCRYPTION_KEY"]))
    )
    assert ok.exit_code == 0, ok.output

    wrong = await install.cli("keys", "drill", "--key-file", str(_key_file(tmp_path, generate_key())), "--json")
    assert wrong.exit_code == 1
    document = as_json(wrong)
    assert document["ok"] is False
    assert document["decrypted"] == 0
    assert document["entered_key_id"] != key_id
    assert any(f"encrypted under key id {key_id}" in p for p in document["problems"])
    # The newest drill decides: a failure after a pass is a failure.
    last = await recovery.latest_drill(install.database, key_id)
    assert last is not None
    assert last[0] is False


async def test_drill_with_text_that_is_not_a_key_fails(install: Install, tmp_path: Path) -> None:
    await seed_with_audit(install, entries=2)
    result = await install.cli("keys", "drill", "--key-file", str(_key_file(tmp_path, "not-a-key")), "--json")
    assert result.exit_code == 1
    assert as_json(result)["problems"] == ["the entered key is not valid base64 (check the padding)"]
