from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from posomni.catalog.models import Barcode, Product
from posomni.config import Settings
from posomni.database import Database
from posomni.inventory.models import StockLevel
from posomni.sales.saga import StepObserver
from tests.conftest import make_settings
from tests.fakes.stripe_server import TEST_API_KEY, FakeStripe
from tests.support import running_app, seed_demo, sell_around_the_clock, sign_in

# Demo products (src/posomni/seed/products.csv) that need no ID check.
COKE = "MIX-COKE-2L"  # $3.29, standard tax
LIMES = "PRO-LIME-1"  # $0.50, tax exempt
CHIPS = "SNK-LAYS-8"  # $4.79
VODKA = "VOD-TITO-750"  # $21.99, 21+


# A split tender on the simulated processor ($5.00 by card, $10.00 cash).
CARD_AND_CASH = [
    {"kind": "card", "amount_cents": 500, "payment_method": "pm_sim_visa"},
    {"kind": "cash", "tendered_cents": 1000},
]

# Each saga step after which a process may die, and what recovery then makes of the sale.
SAGA_STEPS = [
    ("started", "compensated"),
    ("compliance", "compensated"),
    ("reserved", "compensated"),
    ("authorized", "compensated"),
    ("captured", "completed"),
]


class SimulatedCrash(BaseException):
    """The process dies: nothing after this point runs, no compensation, no cleanup."""


class CrashAfter(StepObserver):
    def __init__(self, step: str) -> None:
        self.step = step

    async def after(self, sale_id: int, step: str) -> None:
        if step == self.step:
            raise SimulatedCrash(step)


@dataclass
class Register:
    app: FastAPI
    http: httpx.AsyncClient
    database: Database
    cashier: dict[str, str]
    manager: dict[str, str]
    shift_id: int
    codes: dict[str, str]

    async def new_sale(self) -> dict[str, Any]:
        response = await self.http.post("/sales", json={}, headers=self.cashier)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def scan(self, sale_id: int, sku: str, quantity: int = 1) -> dict[str, Any]:
        response = await self.http.post(
            f"/sales/{sale_id}/items", json={"code": self.codes[sku], "quantity": quantity}, headers=self.cashier
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def complete(self, sale_id: int, tenders: list[dict[str, Any]], key: str | None = None) -> httpx.Response:
        headers = dict(self.cashier)
        if key:
            headers["Idempotency-Key"] = key
        return await self.http.post(f"/sales/{sale_id}/complete", json={"tenders": tenders}, headers=headers)

    async def stock(self, sku: str) -> int:
        async with self.database.sessionmaker() as session:
            product = await session.scalar(select(Product).where(Product.sku == sku))
            assert product is not None
            level = await session.get(StockLevel, (1, product.base_product_id or product.id))
            assert level is not None
            return level.on_hand - level.reserved


@asynccontextmanager
async def open_register(
    settings: Settings, database: Database, *, around_the_clock: bool = True
) -> AsyncIterator[Register]:
    """The demo store seeded, signed in at register 1 with an open shift; selling alcohol at any hour unless
    `around_the_clock` is false (then with the demo store's Florida hours)."""
    await seed_demo(database)
    if around_the_clock:
        await sell_around_the_clock(database)
    async with database.sessionmaker() as session:
        codes = {
            sku: gtin[2:] if gtin.startswith("00") else gtin  # as a scanner sends a UPC-A
            for sku, gtin in await session.execute(select(Product.sku, Barcode.gtin).join(Barcode))
        }
    async with running_app(settings, database) as (app, http):
        cashier = await sign_in(http, "cashier", register_id=1)
        manager = await sign_in(http, "manager", register_id=1)
        shift = await http.post("/shifts", json={"register_id": 1, "opening_float_cents": 20000}, headers=cashier)
        assert shift.status_code == 201, shift.text
        yield Register(app, http, database, cashier, manager, shift.json()["id"], codes)


@pytest.fixture
async def register(settings: Settings, database: Database) -> AsyncIterator[Register]:
    async with open_register(settings, database) as opened:
        yield opened


@pytest.fixture
async def florida_register(settings: Settings, database: Database) -> AsyncIterator[Register]:
    """The register with the demo store's own sale hours, for the tests of the hours rule."""
    async with open_register(settings, database, around_the_clock=False) as opened:
        yield opened


@pytest.fixture
async def pg_register(pg_url: str, tmp_path: Path) -> AsyncIterator[Register]:
    """The same, on PostgreSQL only: for races between real concurrent transactions."""
    database = Database(pg_url, pool_size=30)
    try:
        async with open_register(
            make_settings(DATABASE_URL=pg_url, POSOMNI_DATA_DIR=str(tmp_path)), database
        ) as opened:
            yield opened
    finally:
        await database.dispose()


@asynccontextmanager
async def open_stripe_register(db_url: str, data_dir: Path, fake: FakeStripe) -> AsyncIterator[Register]:
    """The register with Stripe as the card processor: the real SDK against the fake Stripe server."""
    fake.reset()
    settings = make_settings(
        DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(data_dir), CARD_PROCESSOR="stripe",
        STRIPE_SECRET_KEY=TEST_API_KEY, STRIPE_API_BASE=fake.base_url,
    )  # fmt: skip
    database = Database(db_url)
    try:
        async with open_register(settings, database) as register:
            yield register
    finally:
        await database.dispose()
