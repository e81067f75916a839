"""Whole sales with cards through the real Stripe SDK against the fake Stripe server (real HTTP): card, split,
decline then cash, capture failure, a lost response retried without a second charge, and Stripe down."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.stripe_server import FakeStripe, running_fake_stripe
from tests.integration.sales.conftest import CHIPS, COKE, Register, open_stripe_register

# The Stripe SDK passes request bodies to httpx in a form httpx 0.28 deprecates; only that warning is allowed.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with running_fake_stripe() as server:
        yield server


@pytest.fixture
async def stripe_register(db_url: str, tmp_path: Path, fake: FakeStripe) -> AsyncIterator[Register]:
    async with open_stripe_register(db_url, tmp_path, fake) as register:
        yield register


async def _sale(register: Register, quantity: int = 2) -> dict[str, Any]:
    sale = await register.new_sale()
    return await register.scan(sale["id"], CHIPS, quantity)  # 2 x $4.79 + 7 % = $10.25


def _intents(fake: FakeStripe, status: str) -> list[dict[str, Any]]:
    return [i for i in fake.payment_intents() if i["status"] == status]


async def test_full_sale_with_a_card(stripe_register: Register, fake: FakeStripe) -> None:
    sale = await _sale(stripe_register)
    done = await stripe_register.complete(
        sale["id"], [{"kind": "card", "amount_cents": 1025, "payment_method": "pm_card_visa"}]
    )
    assert done.status_code == 200, done.text
    card = next(p for p in done.json()["payments"] if p["tender"] == "card")
    assert card["status"] == "captured"
    assert card["card_brand"] == "visa"
    assert card["card_last4"] == "4242"
    succeeded = _intents(fake, "succeeded")
    assert len(succeeded) == 1
    assert succeeded[0]["amount_received"] == 1025
    assert succeeded[0]["metadata"]["sale_id"] == str(sale["id"])


async def test_split_cash_and_card(stripe_register: Register, fake: FakeStripe) -> None:
    sale = await _sale(stripe_register)
    done = await stripe_register.complete(
        sale["id"],
        [{"kind": "card", "amount_cents": 600, "payment_method": "pm_card_mastercard"},
         {"kind": "cash", "tendered_cents": 500}],
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["change_cents"] == 500 - 425
    assert [i["amount_received"] for i in _intents(fake, "succeeded")] == [600]


async def test_declined_card_then_cash(stripe_register: Register, fake: FakeStripe) -> None:
    sale = await _sale(stripe_register)
    declined = await stripe_register.complete(
        sale["id"],
        [{"kind": "card", "amount_cents": 1025, "payment_method": "pm_card_chargeDeclinedInsufficientFunds"}],
    )
    assert declined.status_code == 402
    assert declined.json()["error"]["details"]["decline_code"] == "insufficient_funds"
    cash = await stripe_register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 2000}])
    assert cash.status_code == 200, cash.text
    assert _intents(fake, "succeeded") == []


async def test_capture_failure_voids_the_authorisation(stripe_register: Register, fake: FakeStripe) -> None:
    sale = await _sale(stripe_register)
    before = await stripe_register.stock(CHIPS)
    fake.fail_next(20, status=500, path="/v1/payment_intents/*/capture")
    failed = await stripe_register.complete(
        sale["id"], [{"kind": "card", "amount_cents": 1025, "payment_method": "pm_card_visa"}]
    )
    fake.clear_faults()
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "processor_unavailable"
    assert [i["status"] for i in fake.payment_intents()] == ["canceled"]
    assert await stripe_register.stock(CHIPS) == before
    assert (await stripe_register.http.get(f"/sales/{sale['id']}", headers=stripe_register.cashier)).json()[
        "status"
    ] == "open"


async def test_a_lost_response_is_retried_with_the_same_key_and_charges_once(
    stripe_register: Register, fake: FakeStripe
) -> None:
    sale = await _sale(stripe_register)
    fake.lose_response_next(1, path="/v1/payment_intents", method="POST")
    fake.lose_response_next(1, path="/v1/payment_intents/*/capture", method="POST")
    done = await stripe_register.complete(
        sale["id"], [{"kind": "card", "amount_cents": 1025, "payment_method": "pm_card_visa"}]
    )
    assert done.status_code == 200, done.text
    assert len(fake.payment_intents()) == 1
    assert len(fake.charges(status="succeeded")) == 1
    creates = fake.requests("POST", "/v1/payment_intents")
    assert len(creates) >= 2
    assert len({r.idempotency_key for r in creates}) == 1


async def test_stripe_down_card_refused_fast_and_cash_still_sells(stripe_register: Register, fake: FakeStripe) -> None:
    sale = await _sale(stripe_register)
    with fake.outage():
        started = time.monotonic()
        refused = await stripe_register.complete(
            sale["id"], [{"kind": "card", "amount_cents": 1025, "payment_method": "pm_card_visa"}]
        )
        elapsed = time.monotonic() - started
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "processor_unavailable"
        # Fails fast: the register is not left waiting (a behavioural bound, not a benchmark).
        assert elapsed < 5
        other = await stripe_register.new_sale()
        await stripe_register.scan(other["id"], COKE)
        cash = await stripe_register.complete(other["id"], [{"kind": "cash", "tendered_cents": 500}])
        assert cash.status_code == 200
        retry_cash = await stripe_register.complete(sale["id"], [{"kind": "cash", "tendered_cents": 2000}])
        assert retry_cash.status_code == 200
