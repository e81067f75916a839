"""Staff accounts through the API and the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from posomni.audit.models import AuditEntry
from posomni.cli import app as cli
from posomni.config import Settings
from posomni.database import Database
from posomni.users.models import User
from tests.support import running_app, seed_demo, sign_in

NEW = {"username": "jdoe", "full_name": "Jane Doe", "role": "cashier", "store_id": 1}


async def test_admin_creates_a_cashier_with_policy_checks(settings: Settings, database: Database) -> None:
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        admin = await sign_in(http, "admin")
        weak = await http.post("/users", headers=admin, json={**NEW, "password": "password", "pin": "1234"})
        assert weak.status_code == 422
        assert weak.json()["error"]["code"] == "weak_password"
        codes = {p["code"] for p in weak.json()["error"]["details"]["problems"]}
        assert codes == {"too_short", "too_common"}
        bad_pin = await http.post(
            "/users", headers=admin, json={**NEW, "password": "a-long-unusual-phrase", "pin": "1234"}
        )
        assert bad_pin.json()["error"]["code"] == "weak_pin"
        no_store = await http.post(
            "/users", headers=admin, json={**NEW, "store_id": None, "password": "a-long-unusual-phrase"}
        )
        assert no_store.status_code == 422
        created = await http.post(
            "/users", headers=admin, json={**NEW, "password": "a-long-unusual-phrase", "pin": "5802"}
        )
        assert created.status_code == 201, created.text
        assert created.json()["has_pin"] is True
        assert "password" not in created.text.lower().replace("password_", "")
        duplicate = await http.post(
            "/users", headers=admin, json={**NEW, "username": "JDoe", "password": "a-long-unusual-phrase"}
        )
        assert duplicate.status_code == 409
        signed = await http.post("/auth/login", json={"username": "jdoe", "password": "a-long-unusual-phrase"})
        assert signed.status_code == 200
    async with database.sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("user."))))
    assert actions == ["user.created"]


async def test_revoking_sessions_ends_old_tokens_but_not_a_new_sign_in(settings: Settings, database: Database) -> None:
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        admin = await sign_in(http, "admin")
        old = await sign_in(http, "manager")
        manager_id = next(
            u["id"] for u in (await http.get("/users", headers=admin)).json() if u["username"] == "manager"
        )
        assert (await http.post(f"/users/{manager_id}/revoke-sessions", headers=admin)).status_code == 200
        assert (await http.get("/auth/me", headers=old)).status_code == 401
        fresh = await sign_in(http, "manager")  # within the same second as the revocation
        assert (await http.get("/auth/me", headers=fresh)).status_code == 200


async def test_role_change_ends_the_users_sessions(settings: Settings, database: Database) -> None:
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        admin = await sign_in(http, "admin")
        cashier = await sign_in(http, "cashier")
        cashier_id = next(
            u["id"] for u in (await http.get("/users", headers=admin)).json() if u["username"] == "cashier"
        )
        changed = await http.patch(f"/users/{cashier_id}", headers=admin, json={"role": "manager"})
        assert changed.status_code == 200
        assert changed.json()["role"] == "manager"
        assert (await http.get("/auth/me", headers=cashier)).status_code == 401
        me = await http.get("/auth/me", headers=await sign_in(http, "cashier"))
        assert me.json()["role"] == "manager"


async def test_admin_cannot_disable_their_own_account(settings: Settings, database: Database) -> None:
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        admin = await sign_in(http, "admin")
        me = (await http.get("/auth/me", headers=admin)).json()
        response = await http.post(f"/users/{me['id']}/disable", headers=admin)
        assert response.status_code == 422


async def test_users_commands(database: Database, settings: Settings, db_url: str, tmp_path: Path) -> None:
    await seed_demo(database)
    env = {
        "POS_ENV": "test", "DATABASE_URL": db_url, "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
        "AUDIT_LOG_ENCRYPTION_KEY": settings.audit_log_encryption_key.get_secret_value(), "PASSWORD_HASH_COST": "4",
    }  # fmt: skip
    none = str(tmp_path / "none")
    runner = CliRunner()

    def invoke(args: list[str], input: str | None = None):  # type: ignore[no-untyped-def]
        return asyncio.to_thread(runner.invoke, cli, [*args, "--env-file", none], env=env, input=input)

    created = await invoke(
        ["users", "create", "--username", "owner", "--role", "admin", "--full-name", "Store Owner"],
        input="correct-horse-battery\ncorrect-horse-battery\n",
    )
    assert created.exit_code == 0, created.output
    assert "correct-horse-battery" not in created.output
    weak = await invoke(
        ["users", "create", "--username", "weak", "--role", "admin", "--full-name", "W", "--password", "123"]
    )
    assert weak.exit_code == 1
    assert "at least 12" in weak.output
    listing = await invoke(["users", "list"])
    assert "owner" in listing.output
    assert (await invoke(["users", "disable", "cashier"])).exit_code == 0
    reset = await invoke(["users", "reset-password", "manager", "--password", "a-brand-new-phrase"])
    assert reset.exit_code == 0, reset.output
    unknown = await invoke(["users", "disable", "ghost"])
    assert unknown.exit_code == 1
    async with running_app(settings, database) as (_, http):
        assert (
            await http.post("/auth/login", json={"username": "owner", "password": "correct-horse-battery"})
        ).status_code == 200
        assert (
            await http.post("/auth/login", json={"username": "manager", "password": "a-brand-new-phrase"})
        ).status_code == 200
        disabled = await http.post("/auth/login", json={"username": "cashier", "password": "demo-cashier-pass-2026"})
        assert disabled.status_code == 401
    async with database.sessionmaker() as session:
        owner = await session.scalar(select(User).where(User.username == "owner"))
    assert owner is not None
    assert owner.role == "admin"
