"""The worker reconciles with Stripe on its own: an orphan authorisation left by a crash is voided without
anyone running `posomni payments reconcile`, through the real SDK against the fake Stripe over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from posomni import bootstrap, worker
from posomni.audit.models import AuditEntry
from posomni.audit.service import decrypt_details
from posomni.backoffice.client import build_backoffice_client
from posomni.cache.service import CacheService
from posomni.config import Settings
from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.payments.gateway import AuthorizeRequest
from posomni.payments.models import PaymentStatus
from posomni.payments.stripe_adapter import StripeGateway
from posomni.sales.models import SaleStatus
from tests.fakes.stripe_server import FakeStripe

from .conftest import new_card_payment, new_sale, reload, stripe_settings

pytestmark = [pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")]


async def authorize(gateway: StripeGateway, key: str, sale_id: int) -> str:
    result = await gateway.authorize(
        AuthorizeRequest(
            amount_cents=2_000,
            currency="usd",
            idempotency_key=key,
            reference=key,
            payment_method="pm_card_visa",
            metadata={"sale_id": str(sale_id)},
        )
    )
    return result.reference


@contextlib.asynccontextmanager
async def running_worker(database: Database, settings: Settings) -> AsyncIterator[None]:
    """`posomni worker` in this event loop, with its own gateway, as the command builds them."""
    cache = CacheService.from_settings(settings, namespace=settings.redis_namespace, registry=None)
    await cache.start()
    gateway = bootstrap.card_gateway(settings)
    backoffice = build_backoffice_client(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(
        worker.run(database, bootstrap.encryption(settings), gateway, backoffice, cache, stop, settings)
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await backoffice.close()
        if gateway is not None:
            await gateway.close()
        await cache.close()


async def eventually(condition: Any, *, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


async def test_the_worker_voids_an_orphan_authorisation_and_keeps_a_young_one(
    seeded: Database, gateway: StripeGateway, fake_stripe: FakeStripe, db_url: str, tmp_path: Path
) -> None:
    settings = stripe_settings(db_url, tmp_path, fake_stripe, RECONCILE_ORPHAN_AGE_MINUTES="30")
    crypto = bootstrap.encryption(settings)
    two_hours_ago = utcnow() - timedelta(hours=2)
    # A sale abandoned after its card was authorised (a crash before the void): nobody will capture it.
    abandoned = await new_sale(seeded, status=SaleStatus.CANCELLED)
    fake_stripe.clock.set(int(two_hours_ago.timestamp()))
    orphan_ref = await authorize(gateway, "worker-orphan", abandoned.id)
    orphan = await new_card_payment(seeded, abandoned, orphan_ref, created_at=two_hours_ago)
    # Authorised five minutes ago: younger than RECONCILE_ORPHAN_AGE_MINUTES, so it is left alone.
    five_minutes_ago = utcnow() - timedelta(minutes=5)
    fake_stripe.clock.set(int(five_minutes_ago.timestamp()))
    young_ref = await authorize(gateway, "worker-young", abandoned.id)
    young = await new_card_payment(seeded, abandoned, young_ref, created_at=five_minutes_ago)
    fake_stripe.clock.reset()

    with capture_logs() as lines:
        async with running_worker(seeded, settings):

            async def orphan_voided() -> bool:
                return (await reload(seeded, orphan.id)).status == PaymentStatus.VOIDED.value

            await eventually(orphan_voided)

    [started] = [line for line in lines if line["event"] == "worker_started"]
    assert started["reconciliation"] == "every 15 min"  # RECONCILE_INTERVAL_MINUTES' default
    assert fake_stripe.payment_intent(orphan_ref)["status"] == "canceled"
    assert fake_stripe.payment_intent(young_ref)["status"] == "requires_capture"
    assert (await reload(seeded, young.id)).status == PaymentStatus.AUTHORIZED.value
    [cancel] = fake_stripe.requests("POST", "/v1/payment_intents/*/cancel")
    assert cancel.path == f"/v1/payment_intents/{orphan_ref}/cancel"
    assert cancel.idempotency_key == f"reconcile:{orphan_ref}:void"
    async with seeded.sessionmaker() as session:
        [entry] = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "payment.orphan_voided")))
        details = decrypt_details(crypto, entry)
    assert entry.target_id == str(orphan.id)
    assert details["reference"] == orphan_ref
    assert details["local_status_before"] == "authorized"


@pytest.mark.parametrize(
    "overrides",
    [{"RECONCILE_INTERVAL_MINUTES": "0"}, {"CARD_PROCESSOR": "simulated", "STRIPE_SECRET_KEY": ""}],
    ids=["interval-0", "simulated-processor"],
)
async def test_without_stripe_or_with_interval_0_the_worker_does_not_reconcile(
    seeded: Database,
    gateway: StripeGateway,
    fake_stripe: FakeStripe,
    db_url: str,
    tmp_path: Path,
    overrides: dict[str, str],
) -> None:
    settings = stripe_settings(db_url, tmp_path, fake_stripe, **overrides)
    abandoned = await new_sale(seeded, status=SaleStatus.CANCELLED)
    two_hours_ago = utcnow() - timedelta(hours=2)
    fake_stripe.clock.set(int(two_hours_ago.timestamp()))
    orphan_ref = await authorize(gateway, "worker-off-orphan", abandoned.id)
    orphan = await new_card_payment(seeded, abandoned, orphan_ref, created_at=two_hours_ago)
    fake_stripe.clock.reset()
    before = len(fake_stripe.requests())

    with capture_logs() as lines:
        async with running_worker(seeded, settings):
            await asyncio.sleep(1.0)  # the other jobs run their first round at once; reconciliation would too

    [started] = [line for line in lines if line["event"] == "worker_started"]
    assert started["reconciliation"] == "off"
    assert fake_stripe.requests()[before:] == []
    assert fake_stripe.payment_intent(orphan_ref)["status"] == "requires_capture"
    assert (await reload(seeded, orphan.id)).status == PaymentStatus.AUTHORIZED.value
