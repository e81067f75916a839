"""Helpers for backup and preflight tests: an install's environment (for the CLI), settings and database,
sharing one encryption key."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from posomni.audit import service as audit
from posomni.auth.principal import Actor
from posomni.cli import app
from posomni.config import Settings
from posomni.database import Database
from posomni.security.crypto import EncryptionService, StaticKeyProvider
from tests.conftest import base_env
from tests.support import seed_demo

runner = CliRunner()

# Variables the CLI could pick up from the machine running the tests; each test sets what it needs.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    [
        "POS_ENV", "AUDIT_LOG_ENCRYPTION_KEY", "OLD_AUDIT_LOG_ENCRYPTION_KEY", "ALLOWED_ORIGINS", "DATABASE_URL",
        "JWT_SECRET", "STRIPE_SECRET_KEY", "CARD_PROCESSOR", "REDIS_HOST", "REDIS_PORT", "SENTRY_DSN",
        "POSOMNI_DATA_DIR", "BACKUP_DIR", "BACKUP_MAX_AGE_HOURS", "BACKUP_KEEP_DAILY", "BACKUP_KEEP_WEEKLY",
        "BACKUP_SCHEDULE", "PUBLIC_URL", "RATE_LIMIT_ENABLED", "PASSWORD_HASH_COST", "FORWARDED_ALLOW_IPS",
    ]
)  # fmt: skip


@dataclass
class Install:
    env: dict[str, str]
    settings: Settings
    database: Database
    env_file: Path

    @property
    def crypto(self) -> EncryptionService:
        return EncryptionService(StaticKeyProvider.from_settings(self.env["AUDIT_LOG_ENCRYPTION_KEY"]))

    def invoke(self, *args: str, input: str | None = None, **env: str) -> Result:
        return runner.invoke(
            app, [*args, "--env-file", str(self.env_file)], env={**CLEAN_ENV, **self.env, **env}, input=input
        )

    async def cli(self, *args: str, input: str | None = None, **env: str) -> Result:
        # The CLI runs its own event loop (asyncio.run): off this test's loop, in a thread.
        return await asyncio.to_thread(self.invoke, *args, input=input, **env)


def install_env(db_url: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), BACKUP_DIR=str(tmp_path / "backups"), **overrides
    )


async def seed_with_audit(install: Install, entries: int = 12) -> None:
    """The demo store plus audit entries in two chains, so verification has real chains to walk."""
    await seed_demo(install.database)
    async with install.database.unit_of_work() as session:
        for i in range(entries):
            await audit.record(
                session, install.crypto, Actor.system("test"), "test.event", store_id=None if i % 2 else 1,
                details={"i": i},
            )  # fmt: skip


def as_json(result: Result) -> Any:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)
