"""`posomni preflight` on a production-like install over PostgreSQL: everything in order passes; each item that
is not fails (or warns) with its own message, and the command exits 1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from posomni.auth.principal import Actor
from posomni.backups import service as backups
from posomni.backups import verification
from posomni.config import from_mapping
from posomni.database import Database
from posomni.keys import recovery
from posomni.preflight import service as preflight
from posomni.preflight.service import PreflightReport
from posomni.security.crypto import generate_key
from posomni.users import service as users
from posomni.users.models import Role
from posomni.users.schemas import UserCreate
from tests.conftest import make_settings
from tests.integration.backups.support import Install, as_json, install_env
from tests.support import seed_demo

PRODUCTION = {
    "POS_ENV": "production",
    "JWT_SECRET": "Zq8-vX2k#Lm4Pr7tWy9aBc1dEf3gHj5K-7u1Q",
    "ALLOWED_ORIGINS": "https://pos.example.com",
    "PUBLIC_URL": "https://pos.example.com",
    "PASSWORD_HASH_COST": "12",
    "STRIPE_SECRET_KEY": "sk_live_51Habcdefgh12345678",
    "SENTRY_DSN": "https://public@sentry.example.com/42",
    "REDIS_HOST": "127.0.0.1",
}


@pytest.fixture
async def production(pg_url: str, tmp_path: Path) -> AsyncIterator[Install]:
    env = install_env(pg_url, tmp_path, **PRODUCTION)
    database = Database(pg_url, pool_size=2)
    yield Install(env, make_settings(**env), database, tmp_path / "no.env")
    await database.dispose()


async def _make_ready(install: Install) -> None:
    """What an operator does before go-live: the first admin, the key's backup and drill, a verified backup."""
    async with install.database.unit_of_work() as session:
        data = UserCreate(
            username="owner", full_name="Store Owner", role=Role.ADMIN, password="Maple-Harbor-Lantern-91"
        )
        # Cost 4 keeps the test fast; preflight checks each hash at the cost it was made with.
        await users.create(session, install.crypto, Actor.system("test"), data, users.Hashing(4))
    await recovery.confirm_backup(install.database, install.crypto, by="Dana", locations=["office safe", "1Password"])
    drill = await recovery.drill(install.database, install.crypto, install.env["AUDIT_LOG_ENCRYPTION_KEY"], by="Dana")
    assert drill.ok, drill.problems
    created = await backups.create_backup(install.database, install.settings)
    backup = await backups.resolve(install.database, install.settings, record_id=created.record_id)
    assert (await verification.verify_backup(install.database, install.settings, install.crypto, backup)).ok


async def _run(install: Install, **changes: str | None) -> PreflightReport:
    env = {k: v for k, v in {**install.env, **changes}.items() if v is not None}
    return await preflight.run(from_mapping(env))


def _by_name(report: PreflightReport) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.message) for c in report.checks}


async def test_a_fully_configured_production_install_passes(production: Install) -> None:
    await _make_ready(production)
    result = await production.cli("preflight", "--json")
    assert result.exit_code == 0, result.output
    document = as_json(result)
    assert document["ok"] is True
    statuses = {c["name"]: c["status"] for c in document["checks"]}
    assert statuses == dict.fromkeys(
        [
            "configuration", "database", "encryption_key", "key_backup", "key_drill", "card_payments",
            "error_tracking", "backup", "rate_limit", "demo_passwords", "allowed_origins", "tls", "redis",
        ],
        "pass",
    )  # fmt: skip
    assert production.env["AUDIT_LOG_ENCRYPTION_KEY"] not in result.stdout
    assert "sk_live_" not in result.stdout

    table = await production.cli("preflight")
    assert table.exit_code == 0
    assert "Ready" in table.output


# (change to the environment, the check it concerns, its expected status, words from its message)
CASES: list[tuple[dict[str, str | None], str, str, str]] = [
    ({"ALLOWED_ORIGINS": "https://pos.example.com,http://localhost:5173"}, "allowed_origins", "fail", "localhost"),
    ({"ALLOWED_ORIGINS": "http://127.0.0.1:8000"}, "allowed_origins", "fail", "127.0.0.1"),
    ({"ALLOWED_ORIGINS": "http://pos.example.com"}, "allowed_origins", "warn", "without TLS"),
    ({"STRIPE_SECRET_KEY": "sk_test_51Habcdefgh12345678"}, "card_payments", "fail", "test-mode key"),
    ({"STRIPE_SECRET_KEY": None}, "card_payments", "warn", "cash only"),
    ({"SENTRY_DSN": None}, "error_tracking", "warn", "not configured"),
    ({"RATE_LIMIT_ENABLED": "false"}, "rate_limit", "fail", "RATE_LIMIT_ENABLED is off"),
    ({"PUBLIC_URL": None}, "tls", "fail", "PUBLIC_URL is not set"),
    ({"PUBLIC_URL": "http://pos.example.com"}, "tls", "fail", "plain http"),
    ({"PUBLIC_URL": "https://localhost"}, "tls", "fail", "local address"),
    ({"POS_ENV": "development"}, "configuration", "fail", "not configured as production"),
    ({"PASSWORD_HASH_COST": "10"}, "configuration", "fail", "PASSWORD_HASH_COST"),
    ({"BACKUP_MAX_AGE_HOURS": "0.0001"}, "backup", "fail", "old (limit"),
    ({"REDIS_HOST": None}, "redis", "warn", "in-memory fallback"),
    ({"OLD_AUDIT_LOG_ENCRYPTION_KEY": generate_key()}, "encryption_key", "warn", "rotation is not finished"),
]


async def test_each_configuration_item_is_judged_on_its_own(production: Install) -> None:
    # One prepared install for every case: preparing one (a verified backup on PostgreSQL) takes seconds.
    await _make_ready(production)
    for changes, name, status, message in CASES:
        report = await _run(production, **changes)
        checks = _by_name(report)
        assert checks[name][0] == status, (changes, checks[name])
        assert message in checks[name][1], (changes, checks[name])
        # Every other item still passes: even a failing configuration lets the rest be judged.
        assert {n: s for n, (s, _) in checks.items() if n != name and s != "pass"} == {}, changes
        assert report.ok is (status != "fail")


async def test_missing_records_each_fail_with_their_message(production: Install) -> None:
    checks = _by_name(await _run(production))
    key_id = production.crypto.current_key_id
    assert checks["key_backup"] == ("fail", f"no backup of key id {key_id} has been confirmed")
    assert checks["key_drill"] == ("fail", f"no recovery drill for key id {key_id}")
    assert checks["backup"] == ("fail", "no backup has passed verification (no backup at all)")
    assert checks["demo_passwords"] == ("pass", "0 active account(s) checked")

    await seed_demo(production.database)
    created = await backups.create_backup(production.database, production.settings)
    await recovery.confirm_backup(production.database, production.crypto, by="Dana", locations=["safe", "vault"])
    await recovery.drill(production.database, production.crypto, generate_key(), by="Dana")  # the wrong key
    checks = _by_name(await _run(production))
    assert checks["demo_passwords"][0] == "fail"
    assert checks["demo_passwords"][1].startswith("admin, auditor, cashier, manager still use")
    assert checks["backup"] == (
        "fail",
        f"no backup has passed verification (backup {created.record_id} is not verified)",
    )
    assert checks["key_backup"][0] == "pass"
    assert checks["key_drill"][0] == "fail"
    assert "FAILED" in checks["key_drill"][1]

    result = await production.cli("preflight")
    assert result.exit_code == 1
    assert "Not ready" in result.output


async def test_an_unreachable_database_fails_its_check_and_the_ones_that_need_it(production: Install) -> None:
    url = "postgresql://posomni:wrong-password-xyz@127.0.0.1:1/posomni"
    report = await _run(production, DATABASE_URL=url)
    checks = _by_name(report)
    assert checks["database"][0] == "fail"
    assert "cannot reach postgresql+asyncpg://posomni:***@127.0.0.1:1/posomni" in checks["database"][1]
    assert "wrong-password-xyz" not in str(report.as_dict())
    for name in ("key_backup", "key_drill", "backup", "demo_passwords"):
        assert checks[name] == ("fail", "not checked: the database is not reachable and migrated")
    assert not report.ok
