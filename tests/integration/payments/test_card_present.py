"""Card-present support for the checkout, the developer's tap endpoint, and the port's contract: the Stripe
adapter and the simulated processor answer the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from posomni.config import Environment
from posomni.database import Database
from posomni.payments import service
from posomni.payments.errors import DevelopmentOnly, UnknownTestCard
from posomni.payments.gateway import (
    AuthorizeRequest,
    CardDeclined,
    CardResult,
    CardStatus,
    PaymentGateway,
    PaymentStateError,
    RefundTooLarge,
)
from posomni.payments.models import Payment, PaymentStatus
from posomni.payments.simulated import SimulatedCardProcessor
from posomni.payments.stripe_adapter import StripeGateway
from tests.conftest import make_settings
from tests.fakes.stripe_server import FakeStripe
from tests.support import running_app, sign_in

from .conftest import new_card_payment, new_sale, reload

pytestmark = [pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")]

AppClient = tuple[FastAPI, httpx.AsyncClient]


def reader_request(key: str, reader_id: str, amount: int = 2_000) -> AuthorizeRequest:
    return AuthorizeRequest(
        amount_cents=amount, currency="usd", idempotency_key=key, reference=key, reader_id=reader_id
    )


# ---- the state machine ------------------------------------------------------------------------------------


def payment(status: PaymentStatus, **values: int) -> Payment:
    return Payment(
        sale_id=1, tender="card", provider="stripe", status=status.value, amount_cents=2_000,
        captured_cents=values.get("captured", 0), refunded_cents=values.get("refunded", 0),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("start", "news", "end"),
    [
        (PaymentStatus.PENDING, CardStatus.AUTHORIZED, PaymentStatus.AUTHORIZED),
        (PaymentStatus.PENDING, CardStatus.DECLINED, PaymentStatus.FAILED),
        (PaymentStatus.AUTHORIZED, CardStatus.CAPTURED, PaymentStatus.CAPTURED),
        (PaymentStatus.AUTHORIZED, CardStatus.VOIDED, PaymentStatus.VOIDED),
        (PaymentStatus.AUTHORIZED, CardStatus.PENDING, PaymentStatus.AUTHORIZED),
        (PaymentStatus.AUTHORIZED, CardStatus.DECLINED, PaymentStatus.AUTHORIZED),
        (PaymentStatus.CAPTURED, CardStatus.AUTHORIZED, PaymentStatus.CAPTURED),
        (PaymentStatus.CAPTURED, CardStatus.VOIDED, PaymentStatus.CAPTURED),
        (PaymentStatus.VOIDED, CardStatus.AUTHORIZED, PaymentStatus.VOIDED),
        (PaymentStatus.FAILED, CardStatus.AUTHORIZED, PaymentStatus.FAILED),
        (PaymentStatus.REFUNDED, CardStatus.CAPTURED, PaymentStatus.REFUNDED),
    ],
)
def test_news_moves_a_payment_forward_never_back(start: PaymentStatus, news: CardStatus, end: PaymentStatus) -> None:
    row = payment(start)
    service.apply_card_result(row, CardResult("pi_1", news, 2_000, 2_000 if news is CardStatus.CAPTURED else 0))
    assert row.status == end.value


def test_the_refunded_total_only_rises_and_stays_within_the_capture() -> None:
    row = payment(PaymentStatus.CAPTURED, captured=2_000)
    assert service.note_refunded(row, 500)
    assert (row.status, row.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED.value, 500)
    assert not service.note_refunded(row, 300)
    assert service.note_refunded(row, 5_000)
    assert (row.status, row.refunded_cents) == (PaymentStatus.REFUNDED.value, 2_000)
    assert not service.note_refunded(payment(PaymentStatus.AUTHORIZED), 100)


def test_idempotency_keys_are_deterministic_per_sale_step_and_attempt() -> None:
    assert service.card_idempotency_key(7, "authorize") == "sale:7:card:1:authorize"
    assert service.card_idempotency_key(7, "authorize", attempt=2) == "sale:7:card:2:authorize"


# ---- polling and cancelling a reader payment ------------------------------------------------------------


async def test_refresh_learns_the_tap_and_cancel_voids_a_waiting_payment(
    seeded: Database, gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    reader_id = fake_stripe.add_reader()
    sale = await new_sale(seeded)
    pending = await gateway.authorize(reader_request("k-poll", reader_id))
    row = await new_card_payment(seeded, sale, pending.reference, status=PaymentStatus.PENDING)

    async with seeded.unit_of_work() as session:
        loaded = await session.get(Payment, row.id)
        assert loaded is not None
        still = await service.refresh_card_payment(session, gateway, loaded)
        assert still.status == PaymentStatus.PENDING.value
    await gateway.simulate_tap(reader_id, "amex")
    async with seeded.unit_of_work() as session:
        loaded = await session.get(Payment, row.id)
        assert loaded is not None
        await service.refresh_card_payment(session, gateway, loaded)
    refreshed = await reload(seeded, row.id)
    assert (refreshed.status, refreshed.card_brand, refreshed.card_last4) == ("authorized", "amex", "0005")

    second = await gateway.authorize(reader_request("k-poll-2", reader_id))
    waiting = await new_card_payment(seeded, sale, second.reference, status=PaymentStatus.PENDING)
    async with seeded.unit_of_work() as session:
        loaded = await session.get(Payment, waiting.id)
        assert loaded is not None
        await service.cancel_reader_payment(session, gateway, loaded, reader_id)
    assert (await reload(seeded, waiting.id)).status == PaymentStatus.VOIDED.value
    assert fake_stripe.payment_intent(second.reference)["status"] == "canceled"


# ---- the developer's tap endpoint -------------------------------------------------------------------------


@pytest.fixture
async def simulated_app(seeded: Database, db_url: str, tmp_path: Path) -> AsyncIterator[AppClient]:
    settings = make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path), CARD_PROCESSOR="simulated")
    async with running_app(settings, seeded) as (app, http):
        yield app, http


async def test_dev_endpoint_taps_a_test_card_on_a_stripe_reader(stripe_app: AppClient, fake_stripe: FakeStripe) -> None:
    app, http = stripe_app
    reader_id = fake_stripe.add_reader()
    pending = await app.state.card_gateway.authorize(reader_request("k-dev", reader_id))
    headers = await sign_in(http, "cashier")

    anonymous = await http.post(f"/payments/dev/readers/{reader_id}/present", json={"card": "visa"})
    tapped = await http.post(f"/payments/dev/readers/{reader_id}/present", json={"card": "visa"}, headers=headers)

    assert anonymous.status_code == 401
    assert tapped.status_code == 200, tapped.text
    body = tapped.json()
    assert (body["reference"], body["status"], body["brand"], body["last4"]) == (
        pending.reference,
        "authorized",
        "visa",
        "4242",
    )
    request = fake_stripe.requests("POST", "/v1/test_helpers/terminal/readers/*/present_payment_method")[0]
    assert request.params["card_present"]["number"] == "4242424242424242"


async def test_dev_endpoint_taps_on_the_simulated_processor_and_is_refused_in_production(
    simulated_app: AppClient,
) -> None:
    app, http = simulated_app
    processor = app.state.card_gateway
    assert isinstance(processor, SimulatedCardProcessor)
    await processor.authorize(reader_request("k-sim", "tmr_register_1"))
    headers = await sign_in(http, "cashier")

    declined = await http.post(
        "/payments/dev/readers/tmr_register_1/present", json={"card": "insufficient_funds"}, headers=headers
    )
    unknown = await http.post("/payments/dev/readers/tmr_register_1/present", json={"card": "gold"}, headers=headers)
    app.state.settings = dataclasses.replace(app.state.settings, env=Environment.PRODUCTION)
    production = await http.post("/payments/dev/readers/tmr_register_1/present", json={}, headers=headers)

    assert declined.status_code == 200
    assert (declined.json()["status"], declined.json()["decline_code"]) == ("declined", "insufficient_funds")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "unknown_test_card")
    assert (production.status_code, production.json()["error"]["code"]) == (403, "development_only")


async def test_present_test_card_refuses_production_and_unknown_cards() -> None:
    production = dataclasses.replace(make_settings(), env=Environment.PRODUCTION)
    with pytest.raises(DevelopmentOnly):
        await service.present_test_card(production, SimulatedCardProcessor(), "tmr_1", "visa")
    with pytest.raises(UnknownTestCard):
        await service.present_test_card(make_settings(), SimulatedCardProcessor(), "tmr_1", "platinum")


# ---- one contract, two processors ------------------------------------------------------------------------


@pytest.fixture(params=["stripe", "simulated"])
async def any_gateway(
    request: pytest.FixtureRequest, gateway: StripeGateway
) -> AsyncIterator[tuple[PaymentGateway, dict[str, str]]]:
    if request.param == "stripe":
        yield gateway, {"visa": "pm_card_visa", "declined": "pm_card_chargeDeclinedInsufficientFunds"}
    else:
        yield SimulatedCardProcessor(), {"visa": "pm_sim_visa", "declined": "pm_sim_insufficient_funds"}


async def test_both_processors_keep_the_same_contract(any_gateway: tuple[PaymentGateway, dict[str, str]]) -> None:
    processor, methods = any_gateway

    def keyed(key: str, method: str) -> AuthorizeRequest:
        return AuthorizeRequest(
            amount_cents=3_000, currency="usd", idempotency_key=key, reference=key, payment_method=methods[method]
        )

    held = await processor.authorize(keyed("c-1", "visa"))
    assert (held.status, held.brand, held.last4) == (CardStatus.AUTHORIZED, "visa", "4242")
    assert (await processor.authorize(keyed("c-1", "visa"))).reference == held.reference
    captured = await processor.capture(held.reference, 2_500, idempotency_key="c-1:capture")
    assert (captured.status, captured.amount_captured_cents) == (CardStatus.CAPTURED, 2_500)
    assert (await processor.retrieve(held.reference)).status is CardStatus.CAPTURED
    await processor.refund(held.reference, 2_000, idempotency_key="c-1:r1")
    with pytest.raises(RefundTooLarge):
        await processor.refund(held.reference, 501, idempotency_key="c-1:r2")
    with pytest.raises(PaymentStateError):
        await processor.void(held.reference, idempotency_key="c-1:void")

    with pytest.raises(CardDeclined) as refused:
        await processor.authorize(keyed("c-2", "declined"))
    assert refused.value.details == {"decline_code": "insufficient_funds", "reason": "insufficient funds"}

    other = await processor.authorize(keyed("c-3", "visa"))
    assert (await processor.void(other.reference, idempotency_key="c-3:void")).status is CardStatus.VOIDED
    with pytest.raises(PaymentStateError):
        await processor.capture(other.reference, 3_000, idempotency_key="c-3:capture")
