"""The Stripe adapter through the payment port, against the fake Stripe server over real HTTP with the real SDK."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from posomni.payments.errors import ReaderBusy, ReaderOffline, ReaderUnknown, UnknownTestCard
from posomni.payments.gateway import (
    AmountOutOfRange,
    AuthorizeRequest,
    CardDeclined,
    CardStatus,
    PaymentStateError,
    ProcessorUnavailable,
    RefundTooLarge,
)
from posomni.payments.stripe_adapter import StripeGateway
from tests.fakes.stripe_server import TEST_API_KEY, FakeStripe

pytestmark = [
    # stripe 16's HTTPXClient posts with `data=<str>`, which httpx deprecates; under "warnings are errors" the
    # SDK would turn that warning into a connection error on every POST.
    pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning"),
]


def keyed(key: str, amount: int = 2_000, method: str = "pm_card_visa", **extra: object) -> AuthorizeRequest:
    return AuthorizeRequest(
        amount_cents=amount,
        currency="USD",
        idempotency_key=key,
        reference=f"sale:{key}",
        payment_method=method,
        metadata={"sale_id": "7"},
        **extra,  # type: ignore[arg-type]
    )


def charges_for(fake: FakeStripe, key: str) -> int:
    """Successful authorisations made for the intent created with idempotency key `key`."""
    intents = [i["id"] for i in fake.payment_intents() if i["metadata"].get("reference") == f"sale:{key}"]
    return len([c for c in fake.charges(status="succeeded") if c["payment_intent"] in intents])


# ---- authorise, capture, void, refund --------------------------------------------------------------------


async def test_authorize_then_capture_in_full_keeps_only_brand_and_last4(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    held = await gateway.authorize(keyed("sale:1:card:1:authorize", 2_599, "pm_card_mastercard"))

    assert held.status is CardStatus.AUTHORIZED
    assert (held.amount_authorized_cents, held.amount_captured_cents) == (2_599, 0)
    assert (held.brand, held.last4) == ("mastercard", "4444")
    created = fake_stripe.requests("POST", "/v1/payment_intents")[0]
    assert created.params["capture_method"] == "manual"
    assert created.params["allowed_payment_method_types"] == ["card"]
    assert created.params["currency"] == "usd"
    assert created.idempotency_key == "sale:1:card:1:authorize"

    captured = await gateway.capture(held.reference, 2_599, idempotency_key="sale:1:card:1:capture")

    assert captured.status is CardStatus.CAPTURED
    assert captured.amount_captured_cents == 2_599
    assert fake_stripe.payment_intent(held.reference)["status"] == "succeeded"


async def test_capture_of_less_than_authorised_takes_only_that(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    held = await gateway.authorize(keyed("k-partial", 5_000))

    with pytest.raises(PaymentStateError):
        await gateway.capture(held.reference, 5_001, idempotency_key="k-partial:capture-too-much")
    captured = await gateway.capture(held.reference, 3_250, idempotency_key="k-partial:capture")

    assert (captured.status, captured.amount_captured_cents) == (CardStatus.CAPTURED, 3_250)
    assert fake_stripe.charges()[0]["amount_captured"] == 3_250


async def test_void_releases_the_hold_again_and_again_but_never_a_captured_payment(gateway: StripeGateway) -> None:
    held = await gateway.authorize(keyed("k-void"))

    voided = await gateway.void(held.reference, idempotency_key="k-void:void")
    again = await gateway.void(held.reference, idempotency_key="k-void:void-2")

    assert voided.status is CardStatus.VOIDED
    assert again.status is CardStatus.VOIDED
    paid = await gateway.authorize(keyed("k-void-paid"))
    await gateway.capture(paid.reference, 2_000, idempotency_key="k-void-paid:capture")
    with pytest.raises(PaymentStateError) as refused:
        await gateway.void(paid.reference, idempotency_key="k-void-paid:void")
    assert refused.value.code == "payment_state"
    assert "refunded, not voided" in refused.value.message


async def test_partial_and_repeated_refunds_up_to_the_captured_amount_and_no_further(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    held = await gateway.authorize(keyed("k-refund", 5_000))
    await gateway.capture(held.reference, 4_000, idempotency_key="k-refund:capture")

    first = await gateway.refund(held.reference, 1_500, idempotency_key="k-refund:r1")
    repeat = await gateway.refund(held.reference, 1_500, idempotency_key="k-refund:r1")
    second = await gateway.refund(held.reference, 2_000, idempotency_key="k-refund:r2")
    with pytest.raises(RefundTooLarge) as too_much:
        await gateway.refund(held.reference, 501, idempotency_key="k-refund:r3")
    last = await gateway.refund(held.reference, 500, idempotency_key="k-refund:r4")
    with pytest.raises(RefundTooLarge) as nothing_left:
        await gateway.refund(held.reference, 1, idempotency_key="k-refund:r5")

    assert repeat == first
    assert [first.amount_cents, second.amount_cents, last.amount_cents] == [1_500, 2_000, 500]
    assert too_much.value.code == "refund_exceeds_payment"
    assert too_much.value.details == {"remaining_cents": 500, "requested_cents": 501}
    assert nothing_left.value.details["remaining_cents"] == 0
    assert sum(r["amount"] for r in fake_stripe.refunds()) == 4_000
    assert len(fake_stripe.refunds()) == 3


async def test_uncaptured_payment_cannot_be_refunded(gateway: StripeGateway) -> None:
    held = await gateway.authorize(keyed("k-refund-held"))
    with pytest.raises(PaymentStateError):
        await gateway.refund(held.reference, 100, idempotency_key="k-refund-held:r1")


@pytest.mark.parametrize("amount", [0, -5, 1_000_001])
async def test_amount_out_of_range_is_refused_before_any_call(
    gateway: StripeGateway, fake_stripe: FakeStripe, amount: int
) -> None:
    with pytest.raises(AmountOutOfRange) as refused:
        await gateway.authorize(keyed("k-range", amount))
    assert refused.value.code == "amount_out_of_range"
    assert fake_stripe.count_requests() == 0


async def test_amount_below_the_processors_minimum_is_out_of_range(gateway: StripeGateway) -> None:
    with pytest.raises(AmountOutOfRange):
        await gateway.authorize(keyed("k-tiny", 25))


@pytest.mark.parametrize(
    ("method", "decline_code", "reason"),
    [
        ("pm_card_chargeDeclined", "generic_decline", "the bank refused it"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "insufficient funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "the card has expired"),
        ("pm_card_chargeDeclinedStolenCard", "stolen_card", "the card was reported stolen"),
    ],
)
async def test_decline_is_card_declined_with_the_reason_in_plain_words(
    gateway: StripeGateway, fake_stripe: FakeStripe, method: str, decline_code: str, reason: str
) -> None:
    with pytest.raises(CardDeclined) as refused:
        await gateway.authorize(keyed("k-decline", method=method))
    with pytest.raises(CardDeclined) as replayed:
        await gateway.authorize(keyed("k-decline", method=method))

    assert refused.value.code == "card_declined"
    assert refused.value.status_code == 402
    assert refused.value.details == {"decline_code": decline_code, "reason": reason}
    assert reason in refused.value.message
    assert replayed.value.details == refused.value.details
    # The retry replayed the stored decline: one attempt at the bank.
    assert len(fake_stripe.charges()) == 1


async def test_a_retry_after_a_decline_answers_with_the_payment_as_it_is_now(gateway: StripeGateway) -> None:
    held = await gateway.authorize(keyed("k-replay"))
    await gateway.capture(held.reference, 2_000, idempotency_key="k-replay:capture")

    again = await gateway.authorize(keyed("k-replay"))

    assert again.reference == held.reference
    assert again.status is CardStatus.CAPTURED


# ---- retries, idempotency and outages -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drop", "empty"])
async def test_lost_response_is_retried_with_the_same_key_and_charges_once(
    gateway: StripeGateway, fake_stripe: FakeStripe, mode: str
) -> None:
    fake_stripe.lose_response_next(path="/v1/payment_intents", mode=mode)  # type: ignore[arg-type]

    held = await gateway.authorize(keyed("sale:4:card:1:authorize"))

    assert held.status is CardStatus.AUTHORIZED
    posts = fake_stripe.requests("POST", "/v1/payment_intents")
    assert [(r.fault, r.replayed) for r in posts] == [("lose_response", False), (None, True)]
    assert {r.idempotency_key for r in posts} == {"sale:4:card:1:authorize"}
    assert len(fake_stripe.charges()) == 1


async def test_lost_capture_response_is_retried_and_captures_once(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    held = await gateway.authorize(keyed("k-lost-capture"))
    fake_stripe.lose_response_next(path="/v1/payment_intents/*/capture")

    captured = await gateway.capture(held.reference, 2_000, idempotency_key="k-lost-capture:capture")

    assert captured.status is CardStatus.CAPTURED
    assert len(fake_stripe.events("charge.captured")) == 1


async def test_server_errors_then_success_charge_once(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    fake_stripe.fail_next(2, status=500, method="POST")

    held = await gateway.authorize(keyed("k-500"))

    assert held.status is CardStatus.AUTHORIZED
    assert [r.status for r in fake_stripe.requests("POST")] == [500, 500, 200]
    assert len(fake_stripe.charges()) == 1


async def test_server_errors_beyond_three_retries_are_processor_unavailable(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next(4, status=503)

    with pytest.raises(ProcessorUnavailable) as failed:
        await gateway.authorize(keyed("k-503"))

    assert failed.value.code == "processor_unavailable"
    assert failed.value.status_code == 503
    assert fake_stripe.count_requests() == 4
    assert fake_stripe.payment_intents() == []


async def test_rate_limit_waits_for_retry_after_and_retries_with_the_same_key(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    fake_stripe.rate_limit_next(retry_after=1)

    started = time.monotonic()
    held = await gateway.authorize(keyed("k-429"))
    elapsed = time.monotonic() - started

    assert held.status is CardStatus.AUTHORIZED
    assert 1.0 <= elapsed < 3.0
    posts = fake_stripe.requests("POST", "/v1/payment_intents")
    assert [r.status for r in posts] == [429, 200]
    assert {r.idempotency_key for r in posts} == {"k-429"}
    assert len(fake_stripe.charges()) == 1


async def test_rate_limit_with_a_long_retry_after_fails_fast_with_when_to_try_again(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    fake_stripe.rate_limit_next(retry_after=30)

    started = time.monotonic()
    with pytest.raises(ProcessorUnavailable) as busy:
        await gateway.authorize(keyed("k-429-long"))

    assert time.monotonic() - started < 1.0
    assert busy.value.headers == {"Retry-After": "30"}
    assert fake_stripe.count_requests() == 1


async def test_stripe_down_fails_fast_and_the_retry_later_charges_once(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    await gateway.authorize(keyed("k-warm-up"))  # a pooled keep-alive connection exists when the outage starts
    with fake_stripe.outage():
        started = time.monotonic()
        with pytest.raises(ProcessorUnavailable) as unavailable:
            await gateway.authorize(keyed("k-outage"))
        elapsed = time.monotonic() - started

    assert elapsed < 2.0
    assert unavailable.value.message == "Card payments are unavailable right now. Cash still works."
    assert fake_stripe.count_requests("POST", "/v1/payment_intents") == 1
    held = await gateway.authorize(keyed("k-outage"))
    assert held.status is CardStatus.AUTHORIZED
    assert charges_for(fake_stripe, "k-outage") == 1


async def test_slow_answer_times_out_and_the_retry_replays_instead_of_charging_again(
    fake_stripe: FakeStripe,
) -> None:
    gateway = StripeGateway.create(TEST_API_KEY, api_base=fake_stripe.base_url, timeout_seconds=0.3)
    try:
        fake_stripe.delay_next(1.0, after_processing=True, path="/v1/payment_intents")
        held = await gateway.authorize(keyed("k-slow"))
    finally:
        await gateway.close()

    assert held.status is CardStatus.AUTHORIZED
    assert [r.replayed for r in fake_stripe.requests("POST", "/v1/payment_intents")] == [False, True]
    assert len(fake_stripe.charges()) == 1


async def test_the_whole_operation_is_bounded_by_its_deadline(fake_stripe: FakeStripe) -> None:
    gateway = StripeGateway.create(
        TEST_API_KEY, api_base=fake_stripe.base_url, timeout_seconds=0.5, deadline_seconds=0.8
    )
    try:
        fake_stripe.delay_next(2.0, count=10, path="/v1/payment_intents")
        started = time.monotonic()
        with pytest.raises(ProcessorUnavailable):
            await gateway.authorize(keyed("k-deadline"))
        elapsed = time.monotonic() - started
    finally:
        await gateway.close()
        fake_stripe.clear_faults()
    assert elapsed < 1.5


async def test_unknown_reference_is_a_payment_state_error(gateway: StripeGateway) -> None:
    with pytest.raises(PaymentStateError) as unknown:
        await gateway.retrieve("pi_doesnotexist")
    assert unknown.value.message == "Unknown payment reference."


async def test_errors_are_logged_with_stripes_request_id_and_no_card_data(
    gateway: StripeGateway,
    fake_stripe: FakeStripe,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(CardDeclined):
        await gateway.authorize(keyed("k-log", method="pm_card_chargeDeclinedInsufficientFunds"))

    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    request_id = fake_stripe.requests("POST", "/v1/payment_intents")[0].request_id
    assert "stripe_error" in logged
    assert request_id in logged
    assert "insufficient_funds" in logged
    assert "exp_" not in logged


# ---- card-present (Terminal, server-driven) -----------------------------------------------------------


async def test_card_present_waits_for_the_tap_then_authorises(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    reader_id = fake_stripe.add_reader("Register 1")
    request = AuthorizeRequest(
        amount_cents=3_000, currency="usd", idempotency_key="sale:9:card:1:authorize", reference="sale:9",
        reader_id=reader_id,
    )  # fmt: skip

    pending = await gateway.authorize(request)

    assert pending.status is CardStatus.PENDING
    created = fake_stripe.requests("POST", "/v1/payment_intents")[0]
    assert created.params["allowed_payment_method_types"] == ["card_present"]
    assert created.params["capture_method"] == "manual"
    assert fake_stripe.reader(reader_id)["action"]["status"] == "in_progress"
    assert (await gateway.retrieve(pending.reference)).status is CardStatus.PENDING

    tapped = await gateway.simulate_tap(reader_id, "mastercard")

    assert tapped.reference == pending.reference
    assert (tapped.status, tapped.brand, tapped.last4) == (CardStatus.AUTHORIZED, "mastercard", "4444")
    captured = await gateway.capture(pending.reference, 3_000, idempotency_key="sale:9:card:1:capture")
    assert captured.status is CardStatus.CAPTURED
    # Asking again with the same key finds the payment as it is now.
    assert (await gateway.authorize(request)).status is CardStatus.CAPTURED
    assert len(fake_stripe.charges()) == 1


async def test_declined_tap_is_declined_with_its_reason(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    reader_id = fake_stripe.add_reader()
    pending = await gateway.authorize(
        AuthorizeRequest(amount_cents=1_000, currency="usd", idempotency_key="k-tap-decline", reference="sale:10",
                         reader_id=reader_id)
    )  # fmt: skip

    tapped = await gateway.simulate_tap(reader_id, "insufficient_funds")

    assert tapped.status is CardStatus.DECLINED
    assert tapped.decline_code == "insufficient_funds"
    assert tapped.message == "insufficient funds"
    assert (await gateway.retrieve(pending.reference)).status is CardStatus.DECLINED


async def test_cancel_on_the_register_stops_the_reader_and_voids_the_payment(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    reader_id = fake_stripe.add_reader()
    pending = await gateway.authorize(
        AuthorizeRequest(amount_cents=1_000, currency="usd", idempotency_key="k-cancel", reference="sale:11",
                         reader_id=reader_id)
    )  # fmt: skip

    await gateway.cancel_reader(reader_id)

    assert fake_stripe.reader(reader_id)["action"] is None
    assert (await gateway.retrieve(pending.reference)).status is CardStatus.VOIDED
    await gateway.cancel_reader(reader_id)  # nothing waiting: nothing to do


async def test_offline_or_busy_reader_is_refused_and_leaves_nothing_open(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    offline = fake_stripe.add_reader(online=False)
    with pytest.raises(ReaderOffline):
        await gateway.authorize(
            AuthorizeRequest(amount_cents=1_000, currency="usd", idempotency_key="k-offline", reference="sale:12",
                             reader_id=offline)
        )  # fmt: skip
    assert [i["status"] for i in fake_stripe.payment_intents()] == ["canceled"]

    busy = fake_stripe.add_reader()
    await gateway.authorize(
        AuthorizeRequest(amount_cents=1_000, currency="usd", idempotency_key="k-busy-1", reference="sale:13",
                         reader_id=busy)
    )  # fmt: skip
    with pytest.raises(ReaderBusy) as refused:
        await gateway.authorize(
            AuthorizeRequest(amount_cents=1_000, currency="usd", idempotency_key="k-busy-2", reference="sale:14",
                             reader_id=busy)
        )  # fmt: skip
    assert refused.value.code == "card_reader_busy"
    with pytest.raises(ReaderUnknown):
        await gateway.cancel_reader("tmr_unknown")
    with pytest.raises(UnknownTestCard):
        await gateway.simulate_tap(busy, "black_amex")


# ---- listing for reconciliation -----------------------------------------------------------------------


async def test_listing_pages_through_the_window(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    fake_stripe.clock.set(1_800_000_000)
    references = []
    for index in range(5):
        references.append((await gateway.authorize(keyed(f"k-list-{index}", 1_000 + index))).reference)
        fake_stripe.clock.advance(60)
    await gateway.capture(references[1], 1_001, idempotency_key="k-list-1:capture")
    await gateway.refund(references[1], 400, idempotency_key="k-list-1:refund")

    listed = await gateway.list_payments(
        created_from=datetime.fromtimestamp(1_800_000_060, UTC),
        created_to=datetime.fromtimestamp(1_800_000_060, UTC) + timedelta(minutes=3),
        page_size=2,
    )

    assert [p.reference for p in listed] == [references[3], references[2], references[1]]
    assert len(fake_stripe.requests("GET", "/v1/payment_intents")) == 2
    refunded = listed[-1]
    assert (refunded.status, refunded.captured_cents, refunded.refunded_cents) == (CardStatus.CAPTURED, 1_001, 400)
    assert refunded.metadata["reference"] == "sale:k-list-1"
