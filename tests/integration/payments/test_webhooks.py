"""`POST /webhooks/stripe`: signatures, events stored once, payments moved forward only, disputes, retries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from typer.testing import CliRunner

from posomni.audit.models import AuditEntry
from posomni.cli import app as cli_app
from posomni.database import Database
from posomni.payments import webhooks
from posomni.payments.gateway import AuthorizeRequest, CardDeclined
from posomni.payments.models import PaymentDispute, PaymentStatus, StripeEvent
from posomni.payments.stripe_adapter import StripeGateway
from tests.conftest import base_env
from tests.fakes.stripe_server import FakeStripe, sign_webhook_payload

from .conftest import WEBHOOK_SECRET, new_card_payment, new_sale, reload

pytestmark = [pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")]

AppClient = tuple[FastAPI, httpx.AsyncClient]


def gateway_of(app: FastAPI) -> StripeGateway:
    gateway = app.state.card_gateway
    assert isinstance(gateway, StripeGateway)
    return gateway


async def deliver(http: httpx.AsyncClient, fake: FakeStripe, event_id: str) -> httpx.Response:
    payload, headers = fake.signed_event(event_id, WEBHOOK_SECRET)
    return await http.post("/webhooks/stripe", content=payload, headers=headers)


def event_id(fake: FakeStripe, event_type: str, index: int = -1) -> str:
    found: str = fake.events(event_type)[index]["id"]
    return found


async def authorize(gateway: StripeGateway, key: str, method: str = "pm_card_visa", amount: int = 2_000) -> str:
    result = await gateway.authorize(
        AuthorizeRequest(amount_cents=amount, currency="usd", idempotency_key=key, reference=key, payment_method=method)
    )
    return result.reference


async def audit_count(database: Database, action: str) -> int:
    async with database.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))
        return int(count or 0)


# ---- signatures -------------------------------------------------------------------------------------------


async def test_signed_event_is_accepted_and_unsigned_or_forged_ones_are_refused(
    stripe_app: AppClient, fake_stripe: FakeStripe
) -> None:
    app, http = stripe_app
    await authorize(gateway_of(app), "k-sig")
    created = event_id(fake_stripe, "payment_intent.created")
    payload, headers = fake_stripe.signed_event(created, WEBHOOK_SECRET)

    unsigned = await http.post("/webhooks/stripe", content=payload, headers={"Content-Type": "application/json"})
    forged = await http.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign_webhook_payload(payload, "whsec_x")}
    )
    stale_payload, stale_headers = fake_stripe.signed_event(created, WEBHOOK_SECRET, timestamp=1_000)
    stale = await http.post("/webhooks/stripe", content=stale_payload, headers=stale_headers)
    tampered = await http.post("/webhooks/stripe", content=payload.replace(b"usd", b"eur"), headers=headers)
    accepted = await http.post("/webhooks/stripe", content=payload, headers=headers)

    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (400, "webhook_signature_missing")
    for refused in (forged, stale, tampered):
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "webhook_signature_invalid")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"received": True, "event_id": created, "duplicate": False, "outcome": "ignored"}


async def test_without_a_webhook_secret_events_are_refused_as_not_configured(
    seeded: Database, db_url: str, tmp_path: Any, fake_stripe: FakeStripe
) -> None:
    from tests.support import running_app

    from .conftest import stripe_settings

    settings = stripe_settings(db_url, tmp_path, fake_stripe, STRIPE_WEBHOOK_SECRET="")
    async with running_app(settings, seeded) as (_, http):
        response = await http.post("/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"})
    assert (response.status_code, response.json()["error"]["code"]) == (503, "webhook_not_configured")


async def test_signed_body_that_is_not_an_event_is_refused(stripe_app: AppClient) -> None:
    _, http = stripe_app
    body = b'{"hello": "world"}'
    response = await http.post(
        "/webhooks/stripe", content=body, headers={"Stripe-Signature": sign_webhook_payload(body, WEBHOOK_SECRET)}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "webhook_payload_invalid")


# ---- stored once, applied forward only --------------------------------------------------------------------


async def test_repeat_delivery_is_acknowledged_and_ignored(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    sale = await new_sale(seeded)
    reference = await authorize(gateway_of(app), "k-dup")
    payment = await new_card_payment(seeded, sale, reference, status=PaymentStatus.PENDING)
    capturable = event_id(fake_stripe, "payment_intent.amount_capturable_updated")

    first = await deliver(http, fake_stripe, capturable)
    second = await deliver(http, fake_stripe, capturable)

    assert first.json()["outcome"] == "applied"
    assert first.json()["duplicate"] is False
    assert second.status_code == 200
    assert second.json() == {"received": True, "event_id": capturable, "duplicate": True, "outcome": "applied"}
    assert (await reload(seeded, payment.id)).status == PaymentStatus.AUTHORIZED.value
    assert await audit_count(seeded, "payment.updated_by_processor") == 1
    async with seeded.sessionmaker() as session:
        stored = await session.get(StripeEvent, capturable)
        assert stored is not None
        assert (stored.attempts, stored.outcome, stored.type) == (
            1,
            "applied",
            "payment_intent.amount_capturable_updated",
        )
        assert stored.processed_at is not None


async def test_events_move_a_payment_forward_only_whatever_their_order(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    gateway = gateway_of(app)
    sale = await new_sale(seeded)
    reference = await authorize(gateway, "k-order")
    payment = await new_card_payment(seeded, sale, reference, status=PaymentStatus.PENDING)
    await gateway.capture(reference, 1_500, idempotency_key="k-order:capture")

    # Stripe does not promise order: the capture's news arrives before the authorisation's.
    succeeded = await deliver(http, fake_stripe, event_id(fake_stripe, "payment_intent.succeeded"))
    late = await deliver(http, fake_stripe, event_id(fake_stripe, "payment_intent.amount_capturable_updated"))
    created = await deliver(http, fake_stripe, event_id(fake_stripe, "payment_intent.created"))

    assert succeeded.json()["outcome"] == "applied"
    assert late.json()["outcome"] == "unchanged"
    assert created.json()["outcome"] == "ignored"
    row = await reload(seeded, payment.id)
    assert (row.status, row.captured_cents) == (PaymentStatus.CAPTURED.value, 1_500)

    charge_captured = await deliver(http, fake_stripe, event_id(fake_stripe, "charge.succeeded"))
    assert charge_captured.json()["outcome"] == "applied"  # brand and last 4 filled in, status kept
    row = await reload(seeded, payment.id)
    assert (row.status, row.card_brand, row.card_last4) == (PaymentStatus.CAPTURED.value, "visa", "4242")


async def test_cancel_and_decline_events_end_pending_payments(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    gateway = gateway_of(app)
    sale = await new_sale(seeded)
    held = await authorize(gateway, "k-cancel")
    voided = await new_card_payment(seeded, sale, held, status=PaymentStatus.AUTHORIZED)
    await gateway.void(held, idempotency_key="k-cancel:void")
    with pytest.raises(CardDeclined):
        await authorize(gateway, "k-declined", method="pm_card_chargeDeclinedInsufficientFunds")
    refused_reference = fake_stripe.events("payment_intent.payment_failed")[0]["data"]["object"]["id"]
    failed = await new_card_payment(seeded, sale, refused_reference, status=PaymentStatus.PENDING)

    await deliver(http, fake_stripe, event_id(fake_stripe, "payment_intent.canceled"))
    await deliver(http, fake_stripe, event_id(fake_stripe, "payment_intent.payment_failed"))

    assert (await reload(seeded, voided.id)).status == PaymentStatus.VOIDED.value
    row = await reload(seeded, failed.id)
    assert (row.status, row.failure_code) == (PaymentStatus.FAILED.value, "insufficient_funds")
    assert row.failure_message == "The card was declined: insufficient funds. Ask for another card or another tender."


async def test_refund_events_raise_the_refunded_total(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    gateway = gateway_of(app)
    sale = await new_sale(seeded)
    reference = await authorize(gateway, "k-refunds", amount=3_000)
    await gateway.capture(reference, 3_000, idempotency_key="k-refunds:capture")
    payment = await new_card_payment(
        seeded, sale, reference, status=PaymentStatus.CAPTURED, amount_cents=3_000, captured_cents=3_000
    )
    await gateway.refund(reference, 1_000, idempotency_key="k-refunds:r1")
    await gateway.refund(reference, 2_000, idempotency_key="k-refunds:r2")
    first, second = (e["id"] for e in fake_stripe.events("charge.refunded"))

    await deliver(http, fake_stripe, first)
    row = await reload(seeded, payment.id)
    assert (row.status, row.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED.value, 1_000)

    await deliver(http, fake_stripe, second)
    await deliver(http, fake_stripe, first)  # a late repeat never lowers the total
    row = await reload(seeded, payment.id)
    assert (row.status, row.refunded_cents) == (PaymentStatus.REFUNDED.value, 3_000)


async def test_dispute_is_recorded_once_and_audited(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    gateway = gateway_of(app)
    sale = await new_sale(seeded)
    reference = await authorize(gateway, "k-dispute")
    await gateway.capture(reference, 2_000, idempotency_key="k-dispute:capture")
    payment = await new_card_payment(seeded, sale, reference, status=PaymentStatus.CAPTURED, captured_cents=2_000)
    dispute = fake_stripe.create_dispute(reference, reason="fraudulent")
    opened = event_id(fake_stripe, "charge.dispute.created")

    response = await deliver(http, fake_stripe, opened)
    # Stripe sends it again as a new delivery of the same event.
    assert (await deliver(http, fake_stripe, opened)).json()["duplicate"] is True

    assert response.json()["outcome"] == "applied"
    async with seeded.sessionmaker() as session:
        rows = list(await session.scalars(select(PaymentDispute)))
    assert len(rows) == 1
    assert (rows[0].provider_dispute_id, rows[0].payment_id) == (dispute["id"], payment.id)
    assert (rows[0].amount_cents, rows[0].reason, rows[0].status) == (2_000, "fraudulent", "needs_response")
    assert rows[0].evidence_due_at is not None
    assert await audit_count(seeded, "payment.dispute_opened") == 1


async def test_reader_events_settle_the_pending_card_present_payment(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    gateway = gateway_of(app)
    sale = await new_sale(seeded)
    reader_id = fake_stripe.add_reader()
    tapped = await gateway.authorize(
        AuthorizeRequest(
            amount_cents=2_000, currency="usd", idempotency_key="k-r1", reference="k-r1", reader_id=reader_id
        )
    )
    ok = await new_card_payment(seeded, sale, tapped.reference, status=PaymentStatus.PENDING)
    await gateway.simulate_tap(reader_id, "visa")
    await gateway.capture(tapped.reference, 2_000, idempotency_key="k-r1:capture")  # frees nothing: reader is done
    declined = await gateway.authorize(
        AuthorizeRequest(
            amount_cents=2_000, currency="usd", idempotency_key="k-r2", reference="k-r2", reader_id=reader_id
        )
    )
    refused = await new_card_payment(seeded, sale, declined.reference, status=PaymentStatus.PENDING)
    await gateway.simulate_tap(reader_id, "declined")

    succeeded = await deliver(http, fake_stripe, event_id(fake_stripe, "terminal.reader.action_succeeded"))
    failed = await deliver(http, fake_stripe, event_id(fake_stripe, "terminal.reader.action_failed"))

    assert succeeded.json()["outcome"] == "applied"
    assert failed.json()["outcome"] == "applied"
    assert (await reload(seeded, ok.id)).status == PaymentStatus.AUTHORIZED.value
    row = await reload(seeded, refused.id)
    assert (row.status, row.failure_code) == (PaymentStatus.FAILED.value, "card_declined")


async def test_event_for_a_payment_we_do_not_have_is_stored_and_marked(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    await authorize(gateway_of(app), "k-unknown")

    response = await deliver(http, fake_stripe, event_id(fake_stripe, "payment_intent.amount_capturable_updated"))

    assert response.json()["outcome"] == "no_payment"


async def test_stored_event_keeps_no_card_data(
    stripe_app: AppClient, fake_stripe: FakeStripe, seeded: Database
) -> None:
    app, http = stripe_app
    await authorize(gateway_of(app), "k-digest", method="pm_card_amex")
    charge_event = event_id(fake_stripe, "charge.succeeded")
    assert "exp_month" in json.dumps(fake_stripe.events("charge.succeeded")[0])

    await deliver(http, fake_stripe, charge_event)

    async with seeded.sessionmaker() as session:
        stored = await session.get(StripeEvent, charge_event)
        assert stored is not None
        text = json.dumps(stored.payload)
    assert stored.payload["object"]["card"] == {"brand": "amex", "last4": "8431"}
    for forbidden in ("exp_month", "exp_year", "fingerprint", "billing_details", "payment_method_details"):
        assert forbidden not in text


def test_digest_masks_card_numbers_in_free_text_metadata() -> None:
    event = {
        "id": "evt_1",
        "type": "payment_intent.created",
        "data": {"object": {"id": "pi_1", "object": "payment_intent", "metadata": {"note": "4242 4242 4242 4242"}}},
    }
    assert webhooks.digest(event)["object"]["metadata"] == {"note": "[card ****4242]"}


# ---- failures are kept and processed again ----------------------------------------------------------------


async def test_processing_failure_keeps_the_event_for_a_retry(
    stripe_app: AppClient,
    fake_stripe: FakeStripe,
    seeded: Database,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    tmp_path: Any,
) -> None:
    app, http = stripe_app
    sale = await new_sale(seeded)
    reference = await authorize(gateway_of(app), "k-fail")
    payment = await new_card_payment(seeded, sale, reference, status=PaymentStatus.PENDING)
    capturable = event_id(fake_stripe, "payment_intent.amount_capturable_updated")
    original = webhooks._apply

    async def broken(*args: Any, **kwargs: Any) -> str:
        await original(*args, **kwargs)  # the change is made, then undone with the savepoint
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(webhooks, "_apply", broken)
    failed = await deliver(http, fake_stripe, capturable)
    again = await deliver(http, fake_stripe, capturable)

    assert (failed.status_code, failed.json()["error"]["code"]) == (500, "webhook_processing_failed")
    assert again.status_code == 500
    assert (await reload(seeded, payment.id)).status == PaymentStatus.PENDING.value
    async with seeded.sessionmaker() as session:
        stored = await session.get(StripeEvent, capturable)
        assert stored is not None
        assert (stored.processed_at, stored.attempts) == (None, 2)
        assert stored.last_error == "RuntimeError: database hiccup"
    assert await audit_count(seeded, "payment.updated_by_processor") == 0

    monkeypatch.undo()
    env = base_env(
        DATABASE_URL=db_url,
        AUDIT_LOG_ENCRYPTION_KEY=app.state.settings.audit_log_encryption_key.get_secret_value(),
        POSOMNI_DATA_DIR=str(tmp_path),
    )
    status = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["payments", "webhooks", "status", "--env-file", str(tmp_path / "none")], env=env
    )
    assert status.exit_code == 0, status.output
    assert capturable in status.output
    retried = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["payments", "webhooks", "retry", "--env-file", str(tmp_path / "none")], env=env
    )

    assert retried.exit_code == 0, retried.output
    assert f"{capturable}: applied" in retried.output
    assert (await reload(seeded, payment.id)).status == PaymentStatus.AUTHORIZED.value
    assert await audit_count(seeded, "payment.updated_by_processor") == 1
    assert (await deliver(http, fake_stripe, capturable)).json()["duplicate"] is True
