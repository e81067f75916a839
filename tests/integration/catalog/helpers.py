"""Helpers shared by the catalog and inventory tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from posomni.audit.models import AuditEntry
from posomni.audit.service import decrypt_details
from posomni.catalog.models import Product
from posomni.database import Database
from posomni.inventory.models import StockLevel
from posomni.inventory.service import ledger_mismatches
from posomni.security.crypto import EncryptionService
from posomni.seed.demo import DEMO_STORE_CODE
from posomni.stores.models import Store


async def product_id(database: Database, sku: str) -> int:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(Product.id).where(Product.sku == sku))
    assert found is not None, sku
    return int(found)


async def demo_store_id(database: Database) -> int:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(Store.id).where(Store.code == DEMO_STORE_CODE))
    assert found is not None
    return int(found)


async def stock(database: Database, store_id: int, product: int) -> tuple[int, int]:
    """(on_hand, reserved) in base units; (0, 0) when never stocked."""
    async with database.sessionmaker() as session:
        row = await session.scalar(
            select(StockLevel).where(StockLevel.store_id == store_id, StockLevel.product_id == product)
        )
    return (0, 0) if row is None else (row.on_hand, row.reserved)


async def assert_ledger_holds(database: Database, *store_ids: int) -> None:
    async with database.sessionmaker() as session:
        for store_id in store_ids:
            assert await ledger_mismatches(session, store_id) == [], f"ledger differs from on_hand in {store_id}"


async def audit_entries(database: Database, crypto: EncryptionService, action: str) -> list[dict[str, Any]]:
    async with database.sessionmaker() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )
    return [decrypt_details(crypto, entry) for entry in entries]
