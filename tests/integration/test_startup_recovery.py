"""Start-up recovery of interrupted sales waits for a migrated database instead of failing with a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from posomni import app as app_module
from posomni.database import Database
from posomni.sales.saga import Checkout
from posomni.security.crypto import EncryptionService, StaticKeyProvider, generate_key


async def _start_up_recovery(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[dict[str, Any]]]:
    """Run the app's start-up recovery on `url`; whether the saga recovery was called, and the log entries."""
    called: list[str] = []

    async def recover(self: Checkout) -> list[object]:
        called.append("recover")
        return []

    monkeypatch.setattr(Checkout, "recover", recover)
    database = Database(url)
    crypto = EncryptionService(StaticKeyProvider.from_settings(generate_key()))
    try:
        with capture_logs() as logs:
            await app_module._recover_interrupted(database, crypto, None)
    finally:
        await database.dispose()
    return called, logs


async def test_recovery_is_skipped_on_a_database_that_is_not_migrated(
    pg_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    called, logs = await _start_up_recovery(pg_empty_url, monkeypatch)
    assert called == []
    assert [entry["event"] for entry in logs] == ["startup_recovery_skipped"]
    assert logs[0]["reason"] == "migrations pending"
    assert logs[0]["current"] is None
    assert logs[0]["head"] is not None


async def test_recovery_runs_on_a_migrated_database(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    called, logs = await _start_up_recovery(pg_url, monkeypatch)
    assert called == ["recover"]
    assert not [entry for entry in logs if entry["event"].startswith("startup_recovery_")]
