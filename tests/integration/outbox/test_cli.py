"""`posomni outbox status | retry | replay` through Typer's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from posomni.audit import service as audit
from posomni.audit.models import AuditEntry
from posomni.cli import app
from posomni.database import Database
from posomni.outbox.models import OutboxMessage
from posomni.security.crypto import EncryptionService, StaticKeyProvider
from tests.conftest import base_env

from .conftest import create_stores, enqueue_messages, messages

runner = CliRunner()

# S1 is in New York (UTC-4 in June): 2025-06-02 local runs from 04:00Z on the 2nd to 04:00Z on the 3rd.
SEEDED = {
    "s1:0": ("delivered", datetime(2025, 6, 1, 15, 0, tzinfo=UTC)),
    "s1:1": ("delivered", datetime(2025, 6, 2, 15, 0, tzinfo=UTC)),
    "s1:2": ("delivered", datetime(2025, 6, 3, 2, 0, tzinfo=UTC)),  # still 2 June in New York
    "s1:3": ("delivered", datetime(2025, 6, 3, 15, 0, tzinfo=UTC)),
    "s1:4": ("dead", datetime(2025, 6, 4, 15, 0, tzinfo=UTC)),
    "s2:0": ("delivered", datetime(2025, 6, 2, 15, 0, tzinfo=UTC)),
    "s2:1": ("dead", datetime(2025, 6, 2, 16, 0, tzinfo=UTC)),
    "s2:2": ("pending", datetime(2025, 6, 5, 15, 0, tzinfo=UTC)),
}


def _seed(url: str) -> dict[str, int]:
    async def go() -> dict[str, int]:
        database = Database(url)
        try:
            stores = await create_stores(database, "S1", "S2")
            await enqueue_messages(database, stores["S1"], 5, prefix="s1")
            await enqueue_messages(database, stores["S2"], 3, prefix="s2")
            async with database.unit_of_work() as session:
                for key, (status, created) in SEEDED.items():
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.idempotency_key == key)
                        .values(
                            status=status,
                            created_at=created,
                            attempts=1 if status == "dead" else 0,
                            last_error="rejected: HTTP 400: bad document" if status == "dead" else None,
                            delivered_at=created if status == "delivered" else None,
                        )
                    )
            return {k: m.id for k, m in (await messages(database)).items()}
        finally:
            await database.dispose()

    return asyncio.run(go())


def _statuses(url: str) -> dict[str, str]:
    async def go() -> dict[str, str]:
        database = Database(url)
        try:
            return {k: m.status for k, m in (await messages(database)).items()}
        finally:
            await database.dispose()

    return asyncio.run(go())


def _audit_entries(url: str, env: dict[str, str | None]) -> list[dict[str, Any]]:
    """The audit log's outbox entries, details decrypted with the key the commands were given."""
    key = env["AUDIT_LOG_ENCRYPTION_KEY"]
    assert key is not None
    crypto = EncryptionService(StaticKeyProvider.from_settings(key))

    async def go() -> list[dict[str, Any]]:
        database = Database(url)
        try:
            async with database.sessionmaker() as session:
                entries = (
                    await session.scalars(
                        select(AuditEntry).where(AuditEntry.action.like("outbox.%")).order_by(AuditEntry.id)
                    )
                ).all()
                return [
                    {"action": e.action, "store_id": e.store_id, "target": (e.target_type, e.target_id),
                     "actor": (e.actor_id, e.actor_role), "details": audit.decrypt_details(crypto, e)}
                    for e in entries
                ]  # fmt: skip
        finally:
            await database.dispose()

    return asyncio.run(go())


def _store_ids(url: str) -> dict[str, int]:
    async def go() -> dict[str, int]:
        database = Database(url)
        try:
            async with database.sessionmaker() as session:
                return {m.idempotency_key: m.store_id for m in (await session.scalars(select(OutboxMessage))).all()}
        finally:
            await database.dispose()

    return asyncio.run(go())


CLI_ACTOR = f"cli:{getpass.getuser()}"


@pytest.fixture
def seeded(db_url: str) -> dict[str, int]:
    return _seed(db_url)


# Variables the outbox commands read that the process environment might carry; each test sets its own.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    ["DATABASE_URL", "CONEXXUS_API_URL", "CONEXXUS_API_KEY", "REDIS_HOST", "SENTRY_DSN", "STORE_TIMEZONE"]
)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str | None]:
    return {**CLEAN_ENV, **base_env(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path))}


def invoke(args: list[str], env: dict[str, str | None], tmp_path: Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["outbox", *args, "--env-file", str(tmp_path / "none.env")], env=env)


def test_status_reports_depth_dead_messages_and_delivered_count(
    seeded: dict[str, int], env: dict[str, str | None], tmp_path: Path
) -> None:
    result = invoke(["status", "--json"], env, tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["pending"], report["delivered"], report["dead"]) == (1, 5, 2)
    assert [m["id"] for m in report["dead_messages"]] == [seeded["s1:4"], seeded["s2:1"]]
    assert report["dead_messages"][0]["last_error"] == "rejected: HTTP 400: bad document"

    text = invoke(["status"], env, tmp_path)
    assert text.exit_code == 0, text.output
    assert "No back office configured" in text.output
    assert "dead: 2" in text.output


def test_retry_one_then_all_dead(
    seeded: dict[str, int], env: dict[str, str | None], tmp_path: Path, db_url: str
) -> None:
    result = invoke(["retry", str(seeded["s1:4"])], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert _statuses(db_url)["s1:4"] == "pending"

    again = invoke(["retry", str(seeded["s1:4"])], env, tmp_path)
    assert again.exit_code == 1
    assert "Only a dead" in again.output
    assert invoke(["retry", "999999"], env, tmp_path).exit_code == 1

    result = invoke(["retry", "--all-dead"], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert "1 message(s)" in result.output
    assert _statuses(db_url)["s2:1"] == "pending"


def test_retry_needs_an_id_or_all_dead(tmp_path: Path) -> None:
    env = {**CLEAN_ENV, **base_env(POSOMNI_DATA_DIR=str(tmp_path))}
    assert invoke(["retry"], env, tmp_path).exit_code == 2
    assert invoke(["retry", "1", "--all-dead"], env, tmp_path).exit_code == 2


def test_replay_resends_a_period_of_one_store_in_its_local_dates(
    seeded: dict[str, int], env: dict[str, str | None], tmp_path: Path, db_url: str
) -> None:
    result = invoke(["replay", "--from", "2025-06-02", "--to", "2025-06-02", "--store", "S1"], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert "2 delivered message(s)" in result.output
    statuses = _statuses(db_url)
    assert [statuses[f"s1:{n}"] for n in range(5)] == ["delivered", "pending", "pending", "delivered", "dead"]
    assert statuses["s2:0"] == "delivered"


def test_replay_of_every_store_from_a_date(
    seeded: dict[str, int], env: dict[str, str | None], tmp_path: Path, db_url: str
) -> None:
    result = invoke(["replay", "--from", "2025-06-02"], env, tmp_path)
    assert result.exit_code == 0, result.output
    statuses = _statuses(db_url)
    assert statuses["s1:0"] == "delivered"
    assert [statuses[k] for k in ("s1:1", "s1:2", "s1:3", "s2:0")] == ["pending"] * 4
    assert statuses["s2:1"] == "dead"


def test_replay_refuses_an_unknown_store_and_a_bad_date(
    env: dict[str, str | None], tmp_path: Path, db_url: str
) -> None:
    unknown = invoke(["replay", "--from", "2025-06-02", "--store", "NOPE"], env, tmp_path)
    assert unknown.exit_code == 1
    assert "No store has this code" in unknown.output
    assert invoke(["replay", "--from", "June 2nd"], env, tmp_path).exit_code == 2


def test_retry_is_audited_per_message_in_its_stores_chain(
    seeded: dict[str, int], env: dict[str, str | None], tmp_path: Path, db_url: str
) -> None:
    stores = _store_ids(db_url)
    assert invoke(["retry", str(seeded["s1:4"])], env, tmp_path).exit_code == 0
    refused = invoke(["retry", str(seeded["s1:4"])], env, tmp_path)  # no longer dead: nothing changes
    assert refused.exit_code == 1
    entries = _audit_entries(db_url, env)
    assert [(e["action"], e["store_id"], e["target"], e["actor"]) for e in entries] == [
        ("outbox.retried", stores["s1:4"], ("outbox_message", str(seeded["s1:4"])), (None, None))
    ]
    assert entries[0]["details"] == {
        "topic": "sale.completed", "aggregate_id": "s1-4", "idempotency_key": "s1:4", "attempts": 1,
        "last_error": "rejected: HTTP 400: bad document", "by": CLI_ACTOR,
    }  # fmt: skip

    assert invoke(["retry", "--all-dead"], env, tmp_path).exit_code == 0
    entries = _audit_entries(db_url, env)[1:]
    assert [(e["action"], e["store_id"], e["target"]) for e in entries] == [
        ("outbox.retried", stores["s2:1"], ("outbox_message", str(seeded["s2:1"])))
    ]
    assert (entries[0]["details"]["idempotency_key"], entries[0]["details"]["by"]) == ("s2:1", CLI_ACTOR)

    # Nothing dead any more: nothing requeued, nothing audited.
    assert "0 message(s)" in invoke(["retry", "--all-dead"], env, tmp_path).output
    assert len(_audit_entries(db_url, env)) == 2


def test_replay_is_audited_once_per_store_whose_messages_go_back(
    seeded: dict[str, int], env: dict[str, str | None], tmp_path: Path, db_url: str
) -> None:
    stores = _store_ids(db_url)
    result = invoke(["replay", "--from", "2025-06-02", "--to", "2025-06-02"], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert "3 delivered message(s)" in result.output
    entries = _audit_entries(db_url, env)
    assert [(e["action"], e["store_id"], e["target"], e["actor"]) for e in entries] == [
        ("outbox.replayed", stores["s1:0"], ("store", str(stores["s1:0"])), (None, None)),
        ("outbox.replayed", stores["s2:0"], ("store", str(stores["s2:0"])), (None, None)),
    ]
    assert [e["details"] for e in entries] == [
        {"from": "2025-06-02", "to": "2025-06-02", "store": "S1", "messages": 2, "by": CLI_ACTOR},
        {"from": "2025-06-02", "to": "2025-06-02", "store": "S2", "messages": 1, "by": CLI_ACTOR},
    ]

    # A period with nothing delivered in it changes nothing and records nothing.
    assert invoke(["replay", "--from", "2030-01-01"], env, tmp_path).exit_code == 0
    assert len(_audit_entries(db_url, env)) == 2


def test_without_its_audit_entry_no_retry_or_replay_is_kept(
    seeded: dict[str, int], env: dict[str, str | None], tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_record(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO audit_log", {}, Exception("disk full"))

    monkeypatch.setattr(audit, "record", failing_record)
    before = _statuses(db_url)
    for args in (["retry", str(seeded["s1:4"])], ["retry", "--all-dead"], ["replay", "--from", "2025-06-01"]):
        result = invoke(args, env, tmp_path)
        assert result.exit_code == 1, (args, result.output)
        assert "disk full" in result.output
    assert _statuses(db_url) == before
