"""Fixtures for the NAXML tests: the command line, golden files, the fake back office, and reading results."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from posomni.audit import service as audit
from posomni.audit.models import AuditEntry
from posomni.catalog.models import Category, PriceChange, Product
from posomni.cli import app as cli
from posomni.config import Settings
from posomni.database import Database
from posomni.outbox.models import OutboxMessage
from posomni.security.crypto import EncryptionService
from tests.fakes.backoffice_server import FakeBackOffice, running_fake_backoffice
from tests.integration.sales.conftest import Register, open_register

DATA = Path(__file__).resolve().parents[2] / "data" / "naxml"
# `UPDATE_GOLDEN=1 pytest tests/integration/naxml` rewrites the golden files from the current output.
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


class Cli:
    def __init__(self, settings: Settings, db_url: str, tmp_path: Path, **env: str) -> None:
        self.env = {
            "POS_ENV": "test", "DATABASE_URL": db_url, "ALLOWED_ORIGINS": "http://127.0.0.1:8000",
            "AUDIT_LOG_ENCRYPTION_KEY": settings.audit_log_encryption_key.get_secret_value(),
            "REDIS_HOST": "", "COLUMNS": "200", **env,
        }  # fmt: skip
        self.none = str(tmp_path / "none.env")
        self.runner = CliRunner()

    async def __call__(self, *args: str) -> Result:
        return await asyncio.to_thread(self.runner.invoke, cli, [*args, "--env-file", self.none], env=self.env)


@pytest.fixture
async def register(settings: Settings, database: Database) -> AsyncIterator[Register]:
    """The demo store, signed in at register 1 with an open shift (as the sales tests have it)."""
    async with open_register(settings, database) as opened:
        yield opened


@pytest.fixture
def run(settings: Settings, db_url: str, tmp_path: Path) -> Cli:
    return Cli(settings, db_url, tmp_path)


def golden(name: str, actual: bytes) -> bytes:
    path = DATA / name
    if UPDATE_GOLDEN:
        path.write_bytes(actual)
    return path.read_bytes()


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeBackOffice]:
    with running_fake_backoffice() as backoffice:
        yield backoffice


@pytest.fixture
def fake(fake_server: FakeBackOffice) -> FakeBackOffice:
    fake_server.reset()
    return fake_server


async def product(database: Database, sku: str) -> Product:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(Product).where(Product.sku == sku))
        assert found is not None, sku
        return found


async def catalog_state(database: Database) -> dict[str, Any]:
    """Everything an import may change, to show that a refused one changed nothing."""
    async with database.sessionmaker() as session:
        products = {
            p.sku: (p.name, p.price_cents, p.category_id, p.is_active, p.tax_class)
            for p in await session.scalars(select(Product))
        }
        categories = {c.code: (c.name, c.tax_class) for c in await session.scalars(select(Category))}
        counts = {
            model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (PriceChange, OutboxMessage, AuditEntry)
        }
    return {"products": products, "categories": categories, "counts": counts}


async def audit_details(database: Database, crypto: EncryptionService, action: str) -> list[dict[str, Any]]:
    async with database.sessionmaker() as session:
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        return [audit.decrypt_details(crypto, entry) for entry in entries]
