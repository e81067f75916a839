"""Reconciliation with the processor's record of the day: mismatches reported, orphan authorisations voided."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from posomni.audit.models import AuditEntry
from posomni.audit.service import decrypt_details
from posomni.cli import app as cli_app
from posomni.database import Database
from posomni.kit.time import local_date, zone
from posomni.payments import tasks
from posomni.payments.errors import ReconciliationUnsupported
from posomni.payments.gateway import AuthorizeRequest
from posomni.payments.models import PaymentStatus
from posomni.payments.reconcile import MismatchKind
from posomni.payments.simulated import SimulatedCardProcessor
from posomni.payments.stripe_adapter import StripeGateway
from posomni.sales.models import SaleStatus
from posomni.security.crypto import EncryptionService, StaticKeyProvider, generate_key
from tests.conftest import base_env
from tests.fakes.stripe_server import TEST_API_KEY, FakeStripe
from tests.support import seed_demo

from .conftest import new_card_payment, new_sale, reload

pytestmark = [pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")]

STORE_TZ = "America/New_York"  # the demo store's
KEY = generate_key()


@pytest.fixture
def crypto() -> EncryptionService:
    return EncryptionService(StaticKeyProvider.from_settings(KEY, None))


def yesterday_noon() -> tuple[date, datetime]:
    """A moment safely in the past, well inside its store-local business day."""
    day = local_date(STORE_TZ) - timedelta(days=1)
    return day, datetime.combine(day, time(12), tzinfo=zone(STORE_TZ))


async def authorize(gateway: StripeGateway, key: str, amount: int = 2_000, **metadata: str) -> str:
    result = await gateway.authorize(
        AuthorizeRequest(
            amount_cents=amount,
            currency="usd",
            idempotency_key=key,
            reference=key,
            payment_method="pm_card_visa",
            metadata=metadata,
        )
    )
    return result.reference


async def test_orphan_authorisation_is_voided_audited_and_the_completed_sale_reported(
    seeded: Database, gateway: StripeGateway, fake_stripe: FakeStripe, crypto: EncryptionService
) -> None:
    day, at = yesterday_noon()
    fake_stripe.clock.set(int(at.timestamp()))
    abandoned = await new_sale(seeded, status=SaleStatus.CANCELLED)
    orphan_ref = await authorize(gateway, "k-orphan", sale_id=str(abandoned.id))
    orphan = await new_card_payment(seeded, abandoned, orphan_ref, created_at=at)
    running = await new_sale(seeded, status=SaleStatus.COMPLETING)
    running_ref = await authorize(gateway, "k-running", sale_id=str(running.id))
    await new_card_payment(seeded, running, running_ref, created_at=at)
    completed = await new_sale(seeded, status=SaleStatus.COMPLETED)
    forgotten_ref = await authorize(gateway, "k-forgotten", sale_id=str(completed.id))
    forgotten = await new_card_payment(seeded, completed, forgotten_ref, created_at=at)
    # A young authorisation of an abandoned sale waits for its age.
    fake_stripe.clock.set(int((at + timedelta(minutes=50)).timestamp()))
    young_ref = await authorize(gateway, "k-young", sale_id=str(abandoned.id))
    await new_card_payment(seeded, abandoned, young_ref, created_at=at + timedelta(minutes=50))

    [report] = await tasks.reconcile(
        seeded, gateway, crypto, void_older_than=timedelta(minutes=60), now=at + timedelta(minutes=90)
    )

    assert report.business_date == day
    assert [(o.reference, o.payment_id, o.voided) for o in report.orphans] == [(orphan_ref, orphan.id, True)]
    assert fake_stripe.payment_intent(orphan_ref)["status"] == "canceled"
    assert fake_stripe.payment_intent(running_ref)["status"] == "requires_capture"
    assert fake_stripe.payment_intent(young_ref)["status"] == "requires_capture"
    assert (await reload(seeded, orphan.id)).status == PaymentStatus.VOIDED.value
    assert [(m.kind, m.payment_id) for m in report.mismatches] == [(MismatchKind.AUTHORIZED_NOT_CAPTURED, forgotten.id)]
    async with seeded.sessionmaker() as session:
        [entry] = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "payment.orphan_voided")))
        details = decrypt_details(crypto, entry)
    assert entry.target_id == str(orphan.id)
    assert details["reference"] == orphan_ref
    assert details["local_status_before"] == "authorized"

    # Run again: nothing left to void, the void is not repeated.
    [again] = await tasks.reconcile(
        seeded, gateway, crypto, void_older_than=timedelta(minutes=60), now=at + timedelta(minutes=90)
    )
    assert again.orphans == []
    assert len(fake_stripe.requests("POST", "/v1/payment_intents/*/cancel")) == 1


class _VoidTogether:
    """The gateway of two workers that reach the void of the same orphan at the same moment."""

    def __init__(self, inner: StripeGateway) -> None:
        self._inner = inner
        self._arrived = 0
        self._both = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def void(self, reference: str, *, idempotency_key: str) -> object:
        self._arrived += 1
        if self._arrived == 2:
            self._both.set()
        await asyncio.wait_for(self._both.wait(), timeout=10)
        return await self._inner.void(reference, idempotency_key=idempotency_key)


async def test_two_workers_voiding_one_orphan_at_once_write_one_audit_entry(
    pg_url: str, gateway: StripeGateway, fake_stripe: FakeStripe, crypto: EncryptionService
) -> None:
    """Several workers reconcile at once only on PostgreSQL (a single worker on SQLite)."""
    database = Database(pg_url, pool_size=4)
    try:
        await seed_demo(database)
        _, at = yesterday_noon()
        fake_stripe.clock.set(int(at.timestamp()))
        abandoned = await new_sale(database, status=SaleStatus.CANCELLED)
        orphan_ref = await authorize(gateway, "k-raced", sale_id=str(abandoned.id))
        orphan = await new_card_payment(database, abandoned, orphan_ref, created_at=at)
        together = cast(StripeGateway, _VoidTogether(gateway))

        first, second = await asyncio.gather(
            *(
                tasks.reconcile(
                    database, together, crypto, void_older_than=timedelta(minutes=60), now=at + timedelta(hours=2)
                )
                for _ in range(2)
            )
        )

        # Both runs voided it (one idempotency key: the processor cancelled it once) ...
        assert [(o.reference, o.voided) for o in first[0].orphans + second[0].orphans] == [(orphan_ref, True)] * 2
        assert fake_stripe.payment_intent(orphan_ref)["status"] == "canceled"
        assert (await reload(database, orphan.id)).status == PaymentStatus.VOIDED.value
        # ... and the audit log says so once.
        async with database.sessionmaker() as session:
            entries = list(
                await session.scalars(select(AuditEntry).where(AuditEntry.action == "payment.orphan_voided"))
            )
        assert len(entries) == 1
    finally:
        await database.dispose()


async def test_authorisation_the_crash_never_recorded_is_reported_and_voided(
    seeded: Database, gateway: StripeGateway, fake_stripe: FakeStripe, crypto: EncryptionService
) -> None:
    _, at = yesterday_noon()
    fake_stripe.clock.set(int(at.timestamp()))
    sale = await new_sale(seeded, status=SaleStatus.OPEN)
    reference = await authorize(gateway, "k-lost-row", sale_id=str(sale.id))

    [report] = await tasks.reconcile(seeded, gateway, crypto, now=at + timedelta(hours=2))

    assert [(m.kind, m.reference, m.sale_id) for m in report.mismatches] == [
        (MismatchKind.MISSING_LOCALLY, reference, sale.id)
    ]
    assert [(o.reference, o.payment_id, o.sale_id, o.voided) for o in report.orphans] == [
        (reference, None, sale.id, True)
    ]
    assert fake_stripe.payment_intent(reference)["status"] == "canceled"


async def test_every_kind_of_mismatch_is_reported_and_nothing_is_voided_in_a_dry_run(
    seeded: Database, gateway: StripeGateway, fake_stripe: FakeStripe, crypto: EncryptionService
) -> None:
    _, at = yesterday_noon()
    fake_stripe.clock.set(int(at.timestamp()))
    sale = await new_sale(seeded, status=SaleStatus.CANCELLED)
    same_ref = await authorize(gateway, "k-same")
    await gateway.capture(same_ref, 2_000, idempotency_key="k-same:capture")
    await new_card_payment(seeded, sale, same_ref, status=PaymentStatus.CAPTURED, captured_cents=2_000, created_at=at)
    captured_ref = await authorize(gateway, "k-captured")
    await gateway.capture(captured_ref, 2_000, idempotency_key="k-captured:capture")
    stale_status = await new_card_payment(seeded, sale, captured_ref, created_at=at)
    amount_ref = await authorize(gateway, "k-amount", amount=2_500)
    wrong_amount = await new_card_payment(seeded, sale, amount_ref, created_at=at)
    refunded_ref = await authorize(gateway, "k-refunded", amount=3_000)
    await gateway.capture(refunded_ref, 3_000, idempotency_key="k-refunded:capture")
    await gateway.refund(refunded_ref, 1_000, idempotency_key="k-refunded:refund")
    unrefunded = await new_card_payment(
        seeded, sale, refunded_ref, status=PaymentStatus.CAPTURED, amount_cents=3_000, captured_cents=3_000,
        created_at=at,
    )  # fmt: skip
    gone = await new_card_payment(seeded, sale, "pi_neverseen", status=PaymentStatus.CAPTURED, created_at=at)

    [report] = await tasks.reconcile(seeded, gateway, crypto, now=at + timedelta(hours=2), dry_run=True)

    found = {(m.kind, m.payment_id, m.detail) for m in report.mismatches}
    assert found == {
        (MismatchKind.STATUS_DIFFERS, stale_status.id, "the statuses disagree"),
        (MismatchKind.AMOUNT_DIFFERS, stale_status.id, "captured amount (cents)"),
        (MismatchKind.AMOUNT_DIFFERS, wrong_amount.id, "authorised amount (cents)"),
        (MismatchKind.AMOUNT_DIFFERS, unrefunded.id, "refunded amount (cents)"),
        (MismatchKind.MISSING_AT_PROCESSOR, gone.id, "the processor does not know this payment"),
    }
    assert (report.local_count, report.processor_count) == (5, 4)
    # The wrongly recorded authorisation is an orphan of a cancelled sale: reported, not voided (dry run).
    assert [(o.payment_id, o.voided) for o in report.orphans] == [(wrong_amount.id, False)]
    assert fake_stripe.count_requests("POST", "/v1/payment_intents/*/cancel") == 0
    assert not report.clean


async def test_the_simulated_processor_cannot_be_reconciled(seeded: Database, crypto: EncryptionService) -> None:
    with pytest.raises(ReconciliationUnsupported):
        await tasks.reconcile(seeded, SimulatedCardProcessor(), crypto)


async def test_reconcile_command_reports_and_voids_then_exits_clean(
    seeded: Database, gateway: StripeGateway, fake_stripe: FakeStripe, db_url: str, tmp_path: Path
) -> None:
    day, at = yesterday_noon()
    fake_stripe.clock.set(int(at.timestamp()))
    sale = await new_sale(seeded, status=SaleStatus.VOIDED)
    reference = await authorize(gateway, "k-cli", sale_id=str(sale.id))
    payment = await new_card_payment(seeded, sale, reference, created_at=at)
    env = base_env(
        DATABASE_URL=db_url,
        POSOMNI_DATA_DIR=str(tmp_path),
        AUDIT_LOG_ENCRYPTION_KEY=KEY,
        CARD_PROCESSOR="stripe",
        STRIPE_SECRET_KEY=TEST_API_KEY,
        STRIPE_API_BASE=fake_stripe.base_url,
    )
    args = ["payments", "reconcile", "--date", day.isoformat(), "--env-file", str(tmp_path / "none")]
    runner = CliRunner()

    dry = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    [document] = json.loads(dry.stdout)
    assert document["orphans"][0]["reference"] == reference
    assert document["orphans"][0]["voided"] is False

    voided = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--void-orphans-older-than", "30"], env=env)
    assert voided.exit_code == 0, voided.output
    assert "1 orphan(s) voided" in voided.output
    assert (await reload(seeded, payment.id)).status == PaymentStatus.VOIDED.value

    unknown = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--store", "NOPE"], env=env)
    assert unknown.exit_code == 1
    assert "No store has that code" in unknown.output
