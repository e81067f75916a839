"""Fixtures for the payment tests: the fake Stripe server (real HTTP, driven by the real SDK), the adapter on it,
and an app wired to both with a seeded store."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from posomni.config import Settings
from posomni.database import Database
from posomni.kit.time import local_date, utcnow
from posomni.payments.models import Payment, PaymentStatus
from posomni.payments.stripe_adapter import StripeGateway
from posomni.sales.models import Sale, SaleStatus
from posomni.stores.models import Register, Store
from posomni.users.models import User
from tests.conftest import make_settings
from tests.fakes.stripe_server import TEST_API_KEY, FakeStripe
from tests.fakes.stripe_server import running_fake_stripe as _running_fake_stripe
from tests.support import running_app, seed_demo

WEBHOOK_SECRET = "whsec_test_posomni_payments"
_receipts = itertools.count(1)


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripe]:
    """One fake Stripe per test module; `fake_stripe` resets it for every test."""
    with _running_fake_stripe() as fake:
        yield fake


@pytest.fixture
def fake_stripe(stripe_server: FakeStripe) -> FakeStripe:
    stripe_server.reset()
    return stripe_server


@pytest.fixture
async def gateway(fake_stripe: FakeStripe) -> AsyncIterator[StripeGateway]:
    adapter = StripeGateway.create(TEST_API_KEY, api_base=fake_stripe.base_url)
    yield adapter
    await adapter.close()


def stripe_settings(db_url: str, data_dir: Path, fake: FakeStripe, **overrides: str) -> Settings:
    values = {
        "DATABASE_URL": db_url,
        "POSOMNI_DATA_DIR": str(data_dir),
        "CARD_PROCESSOR": "stripe",
        "STRIPE_SECRET_KEY": TEST_API_KEY,
        "STRIPE_API_BASE": fake.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **overrides,
    }
    return make_settings(**values)


@pytest.fixture
async def seeded(database: Database) -> Database:
    await seed_demo(database)
    return database


@pytest.fixture
async def stripe_app(
    seeded: Database, db_url: str, tmp_path: Path, fake_stripe: FakeStripe
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = stripe_settings(db_url, tmp_path, fake_stripe)
    async with running_app(settings, seeded) as (app, http):
        yield app, http


async def new_sale(database: Database, *, status: SaleStatus = SaleStatus.OPEN, total_cents: int = 2_000) -> Sale:
    async with database.unit_of_work() as session:
        store = await session.scalar(select(Store).order_by(Store.id))
        register = await session.scalar(select(Register).order_by(Register.id))
        cashier = await session.scalar(select(User).where(User.username == "cashier"))
        assert store is not None
        assert register is not None
        assert cashier is not None
        sale = Sale(
            store_id=store.id,
            register_id=register.id,
            cashier_id=cashier.id,
            receipt_number=f"T-{next(_receipts):06d}-{utcnow().timestamp():.6f}",
            status=status.value,
            business_date=local_date(store.timezone),
            subtotal_cents=total_cents,
            total_cents=total_cents,
        )
        session.add(sale)
        await session.flush()
        return sale


async def new_card_payment(
    database: Database,
    sale: Sale,
    reference: str | None,
    *,
    status: PaymentStatus = PaymentStatus.AUTHORIZED,
    amount_cents: int = 2_000,
    captured_cents: int = 0,
    created_at: datetime | None = None,
) -> Payment:
    async with database.unit_of_work() as session:
        payment = Payment(
            sale_id=sale.id,
            tender="card",
            provider="stripe",
            provider_reference=reference,
            status=status.value,
            amount_cents=amount_cents,
            captured_cents=captured_cents,
        )
        if created_at is not None:
            payment.created_at = created_at
        session.add(payment)
        await session.flush()
        return payment


async def reload(database: Database, payment_id: int) -> Payment:
    async with database.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        return payment
