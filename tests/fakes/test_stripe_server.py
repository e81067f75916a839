"""The fake Stripe server, driven by the real `stripe` SDK over real HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import httpx
import pytest
import stripe  # noqa: TID251 - the fake's own tests drive it with the real SDK, like the adapter will
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .http_server import run_in_thread
from .stripe_server import TEST_API_KEY, FakeClock, FakeStripe, parse_form, running_fake_stripe

pytestmark = [
    # stripe 16's HTTPXClient posts with `data=<str>`, which httpx 0.28 deprecates; under "warnings are
    # errors" the SDK would turn that warning into an APIConnectionError on every POST.
    pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning"),
]

WEBHOOK_SECRET = "whsec_test_fake_secret"


class QuickRetryHTTPXClient(stripe.HTTPXClient):
    """The SDK's own httpx client; it records each back-off the SDK asks for and sleeps 1/100 of it."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        super().__init__(timeout=timeout)
        self.backoffs: list[float] = []

    def sleep_async(self, secs: float) -> Awaitable[None]:
        self.backoffs.append(secs)
        return asyncio.sleep(secs / 100)

    async def close_async(self) -> None:
        await super().close_async()  # type: ignore[no-untyped-call]


def make_client(
    fake: FakeStripe, http_client: stripe.HTTPClient, *, api_key: str = TEST_API_KEY, retries: int = 3
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": fake.base_url},
        max_network_retries=retries,
        http_client=http_client,
    )


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with running_fake_stripe() as fake:
        yield fake


@pytest.fixture
async def http_client() -> AsyncIterator[QuickRetryHTTPXClient]:
    client = QuickRetryHTTPXClient()
    yield client
    await client.close_async()


@pytest.fixture
def client(fake_stripe: FakeStripe, http_client: QuickRetryHTTPXClient) -> stripe.StripeClient:
    return make_client(fake_stripe, http_client)


async def authorize(
    client: stripe.StripeClient,
    *,
    amount: int = 2_000,
    payment_method: str = "pm_card_visa",
    idempotency_key: str | None = None,
    **extra: Any,
) -> stripe.PaymentIntent:
    params: dict[str, Any] = {
        "amount": amount,
        "currency": "usd",
        "capture_method": "manual",
        "payment_method": payment_method,
        "allowed_payment_method_types": ["card"],
        "confirm": True,
        **extra,
    }
    options: dict[str, Any] = {"idempotency_key": idempotency_key} if idempotency_key else {}
    return await client.v1.payment_intents.create_async(params, options)  # type: ignore[arg-type]


# ---- payment intents -----------------------------------------------------------------------------------


async def test_manual_capture_flow_authorizes_then_captures(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    created = await client.v1.payment_intents.create_async(
        {
            "amount": 2_599,
            "currency": "usd",
            "capture_method": "manual",
            "allowed_payment_method_types": ["card"],
            "payment_method": "pm_card_mastercard",
            "metadata": {"sale_id": "42"},
            "description": "Sale 42",
        }
    )
    assert created.status == "requires_confirmation"
    assert created.metadata["sale_id"] == "42"

    confirmed = await client.v1.payment_intents.confirm_async(created.id)
    assert confirmed.status == "requires_capture"
    assert confirmed.amount_capturable == 2_599
    assert confirmed.amount_received == 0
    assert isinstance(confirmed.latest_charge, str)

    expanded = await client.v1.payment_intents.retrieve_async(created.id, {"expand": ["latest_charge"]})
    charge = expanded.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card is not None
    assert (charge.payment_method_details.card.brand, charge.payment_method_details.card.last4) == (
        "mastercard",
        "4444",
    )

    captured = await client.v1.payment_intents.capture_async(created.id)
    assert captured.status == "succeeded"
    assert (captured.amount_received, captured.amount_capturable) == (2_599, 0)

    event_types = [e["type"] for e in fake_stripe.events()]
    assert "payment_intent.amount_capturable_updated" in event_types
    assert event_types[-1] == "payment_intent.succeeded"
    assert {r.stripe_version for r in fake_stripe.requests()} == {stripe.api_version}


async def test_automatic_capture_succeeds_on_confirmation(client: stripe.StripeClient) -> None:
    intent = await authorize(client, capture_method="automatic")
    assert intent.status == "succeeded"
    assert intent.amount_received == 2_000


async def test_partial_capture_receives_only_the_captured_amount(client: stripe.StripeClient) -> None:
    intent = await authorize(client, amount=5_000)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.payment_intents.capture_async(intent.id, {"amount_to_capture": 5_001})
    assert too_much.value.code == "amount_too_large"
    assert too_much.value.param == "amount_to_capture"

    captured = await client.v1.payment_intents.capture_async(intent.id, {"amount_to_capture": 3_250})
    assert captured.status == "succeeded"
    assert captured.amount_received == 3_250

    with pytest.raises(stripe.InvalidRequestError) as twice:
        await client.v1.payment_intents.capture_async(intent.id)
    assert twice.value.code == "payment_intent_unexpected_state"


async def test_cancel_voids_an_authorisation_but_not_a_captured_payment(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    held = await authorize(client)
    canceled = await client.v1.payment_intents.cancel_async(held.id, {"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert canceled.amount_capturable == 0
    assert fake_stripe.events("payment_intent.canceled")

    paid = await authorize(client, capture_method="automatic")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.payment_intents.cancel_async(paid.id)
    assert refused.value.code == "payment_intent_unexpected_state"
    assert refused.value.http_status == 400


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ],
)
async def test_declined_card_raises_card_error_with_decline_code(
    client: stripe.StripeClient,
    fake_stripe: FakeStripe,
    payment_method: str,
    code: str,
    decline_code: str,
) -> None:
    with pytest.raises(stripe.CardError) as declined:
        await authorize(client, payment_method=payment_method)

    error = declined.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error is not None
    assert error.error.type == "card_error"
    assert error.error.decline_code == decline_code
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
    intent = error.error.payment_intent
    assert intent is not None
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.decline_code == decline_code
    assert fake_stripe.charges(status="succeeded") == []
    assert len(fake_stripe.events("payment_intent.payment_failed")) == 1


async def test_confirming_with_dashboard_payment_methods_needs_a_return_url_like_real_stripe(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="return_url"):
        await client.v1.payment_intents.create_async(
            {"amount": 1_000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
        )
    intent = await client.v1.payment_intents.create_async(
        {
            "amount": 1_000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )
    assert intent.status == "succeeded"
    assert intent.capture_method == "automatic_async"


async def test_payment_method_types_follow_the_requested_api_version(
    client: stripe.StripeClient, fake_stripe: FakeStripe, http_client: QuickRetryHTTPXClient
) -> None:
    # The SDK pins an endive version, where only `allowed_payment_method_types` may choose the types.
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.payment_intents.create_async(
            {"amount": 1_000, "currency": "usd", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]
        )
    assert (refused.value.code, refused.value.param) == (
        "payment_method_types_no_longer_supported",
        "payment_method_types",
    )

    filtered = await client.v1.payment_intents.create_async(
        {"amount": 1_000, "currency": "usd", "allowed_payment_method_types": ["card_present", "interac_present"]}
    )
    assert filtered.payment_method_types == ["card_present"]
    assert filtered.allowed_payment_method_types == ["card_present", "interac_present"]
    assert filtered.automatic_payment_methods is None

    older = stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": fake_stripe.base_url},
        stripe_version="2025-03-31.basil",
        http_client=http_client,
    )
    legacy = await older.v1.payment_intents.create_async(
        {"amount": 1_000, "currency": "usd", "payment_method_types": ["card_present"]}  # type: ignore[typeddict-unknown-key]
    )
    assert legacy.payment_method_types == ["card_present"]
    assert fake_stripe.requests()[-1].stripe_version == "2025-03-31.basil"


async def test_invalid_parameters_are_refused_with_the_param_named(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.payment_intents.create_async({"currency": "usd"})  # type: ignore[typeddict-item]
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "amount")

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.payment_intents.create_async(
            {"amount": 1_000, "currency": "usd", "card_number": "4242424242424242"}  # type: ignore[typeddict-unknown-key]
        )
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "card_number")

    with pytest.raises(stripe.InvalidRequestError) as small:
        await client.v1.payment_intents.create_async({"amount": 10, "currency": "usd"})
    assert small.value.code == "amount_too_small"

    with pytest.raises(stripe.InvalidRequestError) as no_such:
        await client.v1.payment_intents.retrieve_async("pi_missing")
    assert (no_such.value.http_status, no_such.value.code) == (404, "resource_missing")


# ---- refunds -------------------------------------------------------------------------------------------


async def test_partial_refunds_add_up_and_over_refunding_is_refused(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    intent = await authorize(client, amount=2_000, capture_method="automatic")

    first = await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 500})
    second = await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 700})
    assert (first.status, first.amount, second.amount) == ("succeeded", 500, 700)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 801})
    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")
    assert "$8.00" in str(too_much.value.user_message)

    rest = await client.v1.refunds.create_async({"payment_intent": intent.id})
    assert rest.amount == 800

    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1})
    assert nothing_left.value.code == "charge_already_refunded"

    listed = await client.v1.refunds.list_async({"payment_intent": intent.id})
    assert sorted(r.amount for r in listed.data) == [500, 700, 800]
    fetched = await client.v1.refunds.retrieve_async(first.id)
    assert fetched.charge == intent.latest_charge
    charge = await client.v1.charges.retrieve_async(str(intent.latest_charge))
    assert (charge.amount_refunded, charge.refunded) == (2_000, True)
    assert len(fake_stripe.events("charge.refunded")) == 3


async def test_an_uncaptured_authorisation_cannot_be_refunded(client: stripe.StripeClient) -> None:
    intent = await authorize(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.refunds.create_async({"payment_intent": intent.id})
    assert refused.value.code == "payment_intent_unexpected_state"


# ---- idempotency and faults ----------------------------------------------------------------------------


async def test_same_idempotency_key_replays_the_stored_response_and_charges_once(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    first = await authorize(client, idempotency_key="sale:1:authorize")
    second = await authorize(client, idempotency_key="sale:1:authorize")

    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["idempotent-replayed"] == "true"
    assert fake_stripe.count_requests("POST", "/v1/payment_intents") == 2
    assert len(fake_stripe.charges()) == 1
    assert [r.replayed for r in fake_stripe.requests("POST")] == [False, True]
    assert [r.idempotency_key for r in fake_stripe.requests("POST")] == ["sale:1:authorize"] * 2


async def test_a_declined_attempt_is_replayed_as_the_same_decline(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    for _ in range(2):
        with pytest.raises(stripe.CardError):
            await authorize(client, payment_method="pm_card_chargeDeclined", idempotency_key="sale:2:authorize")
    assert len(fake_stripe.charges()) == 1
    assert len(fake_stripe.payment_intents()) == 1


async def test_reusing_an_idempotency_key_with_other_parameters_is_refused(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    await authorize(client, amount=1_000, idempotency_key="sale:3:authorize")
    with pytest.raises(stripe.IdempotencyError) as conflict:
        await authorize(client, amount=1_100, idempotency_key="sale:3:authorize")
    assert conflict.value.http_status == 400
    assert len(fake_stripe.charges()) == 1


async def test_idempotency_keys_are_scoped_to_the_api_key(
    fake_stripe: FakeStripe, http_client: QuickRetryHTTPXClient
) -> None:
    store_a = make_client(fake_stripe, http_client, api_key="sk_test_store_a")
    store_b = make_client(fake_stripe, http_client, api_key="sk_test_store_b")
    a = await authorize(store_a, amount=1_000, idempotency_key="sale:1:authorize")
    b = await authorize(store_b, amount=1_200, idempotency_key="sale:1:authorize")
    assert a.id != b.id


@pytest.mark.parametrize("mode", ["drop", "empty"])
async def test_lost_response_after_the_charge_is_replayed_on_retry_not_charged_twice(
    client: stripe.StripeClient,
    fake_stripe: FakeStripe,
    http_client: QuickRetryHTTPXClient,
    mode: Any,
) -> None:
    fake_stripe.lose_response_next(path="/v1/payment_intents", mode=mode)

    intent = await authorize(client, idempotency_key="sale:4:authorize")

    assert intent.status == "requires_capture"
    posts = fake_stripe.requests("POST", "/v1/payment_intents")
    assert [(r.fault, r.replayed) for r in posts] == [("lose_response", False), (None, True)]
    assert {r.idempotency_key for r in posts} == {"sale:4:authorize"}
    assert len(fake_stripe.charges()) == 1
    assert len(http_client.backoffs) == 1


async def test_sdk_generated_idempotency_key_also_protects_a_lost_response(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    fake_stripe.lose_response_next(path="/v1/payment_intents/*/capture")
    intent = await authorize(client)

    captured = await client.v1.payment_intents.capture_async(intent.id)

    assert captured.status == "succeeded"
    captures = fake_stripe.requests("POST", "/v1/payment_intents/*/capture")
    assert len(captures) == 2
    assert captures[0].idempotency_key == captures[1].idempotency_key
    assert len(fake_stripe.events("charge.captured")) == 1


async def test_server_errors_are_retried_by_the_sdk_until_success(
    client: stripe.StripeClient, fake_stripe: FakeStripe, http_client: QuickRetryHTTPXClient
) -> None:
    fake_stripe.fail_next(2, status=500, method="POST")

    intent = await authorize(client, idempotency_key="sale:5:authorize")

    assert intent.status == "requires_capture"
    assert [r.status for r in fake_stripe.requests("POST")] == [500, 500, 200]
    assert len(http_client.backoffs) == 2
    assert len(fake_stripe.charges()) == 1


async def test_server_errors_beyond_the_retry_budget_surface_as_api_error(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next(4, status=503)
    with pytest.raises(stripe.APIError) as failed:
        await authorize(client)
    assert failed.value.http_status == 503
    assert fake_stripe.count_requests() == 4
    assert fake_stripe.payment_intents() == []


async def test_rate_limit_is_not_retried_by_the_sdk_and_exposes_retry_after(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    fake_stripe.rate_limit_next(retry_after=2)

    with pytest.raises(stripe.RateLimitError) as limited:
        await authorize(client, idempotency_key="sale:6:authorize")

    assert limited.value.http_status == 429
    assert limited.value.error is not None
    assert limited.value.error.code == "rate_limit"
    assert limited.value.headers is not None
    assert limited.value.headers["retry-after"] == "2"
    assert fake_stripe.count_requests() == 1
    assert fake_stripe.payment_intents() == []
    # The caller honours Retry-After and retries with the same key: exactly one charge.
    await authorize(client, idempotency_key="sale:6:authorize")
    assert len(fake_stripe.charges()) == 1


async def test_rate_limit_with_stripe_should_retry_is_retried_by_the_sdk(
    client: stripe.StripeClient, fake_stripe: FakeStripe, http_client: QuickRetryHTTPXClient
) -> None:
    fake_stripe.rate_limit_next(retry_after=1, should_retry=True)
    intent = await authorize(client)
    assert intent.status == "requires_capture"
    assert [r.status for r in fake_stripe.requests()] == [429, 200]
    assert len(http_client.backoffs) == 1


async def test_unreachable_stripe_fails_fast_with_api_connection_error(
    client: stripe.StripeClient, fake_stripe: FakeStripe, http_client: QuickRetryHTTPXClient
) -> None:
    await authorize(client)  # a pooled keep-alive connection exists when the outage starts
    with fake_stripe.outage():
        started = time.monotonic()
        with pytest.raises(stripe.APIConnectionError) as unreachable:
            await authorize(client)
        assert time.monotonic() - started < 2.0
    assert unreachable.value.should_retry
    assert len(http_client.backoffs) == 3
    assert fake_stripe.count_requests() == 1

    recovered = await authorize(client)
    assert recovered.status == "requires_capture"


async def test_slow_answer_times_out_and_the_retry_replays_the_charge(fake_stripe: FakeStripe) -> None:
    http_client = QuickRetryHTTPXClient(timeout=0.2)
    try:
        client = make_client(fake_stripe, http_client)
        fake_stripe.delay_next(0.5, after_processing=True, path="/v1/payment_intents")
        started = time.monotonic()
        intent = await authorize(client, idempotency_key="sale:7:authorize")
        assert time.monotonic() - started < 2.0
    finally:
        await http_client.close_async()
    assert intent.status == "requires_capture"
    assert [r.replayed for r in fake_stripe.requests("POST")] == [False, True]
    assert len(fake_stripe.charges()) == 1


async def test_requests_without_a_test_secret_key_are_refused(
    fake_stripe: FakeStripe, http_client: QuickRetryHTTPXClient
) -> None:
    async with httpx.AsyncClient(base_url=fake_stripe.base_url) as raw:
        response = await raw.get("/v1/payment_intents")
    assert response.status_code == 401
    assert response.headers["request-id"].startswith("req_")
    assert response.json()["error"]["type"] == "invalid_request_error"

    live = make_client(fake_stripe, http_client, api_key="sk_live_not_for_tests")
    with pytest.raises(stripe.AuthenticationError):
        await live.v1.payment_intents.list_async()


# ---- listing -------------------------------------------------------------------------------------------


async def test_list_filters_by_created_and_paginates_newest_first(fake_stripe: FakeStripe) -> None:
    fake_stripe.clock.set(1_700_000_000)
    http_client = QuickRetryHTTPXClient()
    try:
        client = make_client(fake_stripe, http_client)
        ids = []
        for _ in range(5):
            ids.append((await authorize(client)).id)
            fake_stripe.clock.advance(60)

        window = await client.v1.payment_intents.list_async(
            {"created": {"gte": 1_700_000_060, "lte": 1_700_000_180}, "limit": 2}
        )
        assert [pi.id for pi in window.data] == [ids[3], ids[2]]
        assert window.has_more

        following = await client.v1.payment_intents.list_async(
            {"created": {"gte": 1_700_000_060, "lte": 1_700_000_180}, "limit": 2, "starting_after": ids[2]}
        )
        assert [pi.id for pi in following.data] == [ids[1]]
        assert not following.has_more

        everything = [
            pi.id async for pi in (await client.v1.payment_intents.list_async({"limit": 2})).auto_paging_iter()
        ]
        assert everything == ids[::-1]
    finally:
        await http_client.close_async()


# ---- terminal ------------------------------------------------------------------------------------------


async def card_present_intent(client: stripe.StripeClient, amount: int = 3_000) -> stripe.PaymentIntent:
    return await client.v1.payment_intents.create_async(
        {
            "amount": amount,
            "currency": "usd",
            "capture_method": "manual",
            "allowed_payment_method_types": ["card_present"],
            "metadata": {"sale_id": "88"},
        }
    )


async def test_reader_processes_a_payment_when_a_card_is_presented(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    reader_id = fake_stripe.add_reader("Register 1")
    intent = await card_present_intent(client)

    reader = await client.v1.terminal.readers.process_payment_intent_async(
        reader_id, {"payment_intent": intent.id}, {"idempotency_key": "sale:88:process"}
    )
    assert reader.action is not None
    assert (reader.action.type, reader.action.status) == ("process_payment_intent", "in_progress")

    presented = await client.v1.test_helpers.terminal.readers.present_payment_method_async(
        reader_id, {"card_present": {"number": "5555555555554444"}}
    )
    assert presented.action is not None
    assert presented.action.status == "succeeded"

    polled = await client.v1.terminal.readers.retrieve_async(reader_id)
    assert polled.action is not None
    assert polled.action.status == "succeeded"

    authorized = await client.v1.payment_intents.retrieve_async(intent.id, {"expand": ["latest_charge"]})
    assert authorized.status == "requires_capture"
    charge = authorized.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.payment_method_details is not None
    card = charge.payment_method_details.card_present
    assert card is not None
    assert (card.brand, card.last4) == ("mastercard", "4444")

    captured = await client.v1.payment_intents.capture_async(intent.id)
    assert captured.status == "succeeded"
    assert len(fake_stripe.events("terminal.reader.action_succeeded")) == 1


async def test_declined_card_on_the_reader_fails_the_action(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    reader_id = fake_stripe.add_reader()
    intent = await card_present_intent(client)
    await client.v1.terminal.readers.process_payment_intent_async(reader_id, {"payment_intent": intent.id})

    reader = await client.v1.test_helpers.terminal.readers.present_payment_method_async(
        reader_id, {"card_present": {"number": "4000000000009995"}}
    )

    assert reader.action is not None
    assert (reader.action.status, reader.action.failure_code) == ("failed", "card_declined")
    declined = await client.v1.payment_intents.retrieve_async(intent.id)
    assert declined.status == "requires_payment_method"
    assert declined.last_payment_error is not None
    assert declined.last_payment_error.decline_code == "insufficient_funds"
    assert len(fake_stripe.events("terminal.reader.action_failed")) == 1


async def test_busy_reader_refuses_a_second_payment_until_its_action_is_canceled(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    reader_id = fake_stripe.add_reader()
    first, second = await card_present_intent(client), await card_present_intent(client)
    await client.v1.terminal.readers.process_payment_intent_async(reader_id, {"payment_intent": first.id})

    with pytest.raises(stripe.InvalidRequestError) as busy:
        await client.v1.terminal.readers.process_payment_intent_async(reader_id, {"payment_intent": second.id})
    assert busy.value.code == "terminal_reader_busy"

    cleared = await client.v1.terminal.readers.cancel_action_async(reader_id)
    assert cleared.action is None
    reader = await client.v1.terminal.readers.process_payment_intent_async(reader_id, {"payment_intent": second.id})
    assert reader.action is not None
    assert reader.action.status == "in_progress"


async def test_offline_reader_and_card_only_intent_are_refused(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    reader_id = fake_stripe.add_reader(online=False)
    intent = await card_present_intent(client)
    with pytest.raises(stripe.InvalidRequestError) as offline:
        await client.v1.terminal.readers.process_payment_intent_async(reader_id, {"payment_intent": intent.id})
    assert offline.value.code == "terminal_reader_offline"

    fake_stripe.set_reader_online(reader_id, True)
    online_only = await client.v1.payment_intents.create_async(
        {"amount": 1_000, "currency": "usd", "allowed_payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.terminal.readers.process_payment_intent_async(reader_id, {"payment_intent": online_only.id})


# ---- events and webhooks -------------------------------------------------------------------------------


class WebhookReceiver:
    """A tiny ASGI endpoint keeping each POSTed body with its Stripe-Signature header."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        with self._lock:
            self.received.append((body, request.headers.get("stripe-signature", "")))
        await Response(status_code=200)(scope, receive, send)


async def test_events_are_delivered_as_webhooks_verifiable_by_the_sdk(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    receiver = WebhookReceiver()
    with run_in_thread(receiver) as receiver_url:
        fake_stripe.configure_webhook(f"{receiver_url}/webhooks/stripe", WEBHOOK_SECRET)
        intent = await authorize(client, idempotency_key="sale:9:authorize")
        emitted = fake_stripe.events()
        fake_stripe.wait_for_webhook_deliveries(len(emitted))

        succeeded = fake_stripe.events("payment_intent.amount_capturable_updated")[0]
        fake_stripe.deliver_event(succeeded["id"])
        deliveries = fake_stripe.wait_for_webhook_deliveries(len(emitted) + 1)

    assert {d.status_code for d in deliveries} == {200}
    events = [stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET) for body, signature in receiver.received]
    assert [e.id for e in events] == [e["id"] for e in emitted] + [succeeded["id"]]
    capturable = events[-1]
    assert capturable.type == "payment_intent.amount_capturable_updated"
    assert capturable.data.object["id"] == intent.id
    assert capturable.request is not None
    assert capturable.request.idempotency_key == "sale:9:authorize"

    body, signature = receiver.received[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_wrong")

    fetched = await client.v1.events.retrieve_async(succeeded["id"])
    assert fetched.type == "payment_intent.amount_capturable_updated"


async def test_signed_event_helper_and_dispute_event(client: stripe.StripeClient, fake_stripe: FakeStripe) -> None:
    intent = await authorize(client, capture_method="automatic")
    dispute = fake_stripe.create_dispute(intent.id)

    event = fake_stripe.events("charge.dispute.created")[0]
    payload, headers = fake_stripe.signed_event(event["id"], WEBHOOK_SECRET)
    verified = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], WEBHOOK_SECRET)
    assert verified.data.object["id"] == dispute["id"]
    assert verified.data.object["payment_intent"] == intent.id

    stale_payload, stale_headers = fake_stripe.signed_event(event["id"], WEBHOOK_SECRET, timestamp=1_000)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(stale_payload, stale_headers["Stripe-Signature"], WEBHOOK_SECRET)

    listed = await client.v1.events.list_async({"type": "charge.dispute.created"})
    assert [e.id for e in listed.data] == [event["id"]]


# ---- plumbing ------------------------------------------------------------------------------------------


def test_form_bodies_use_stripe_bracket_notation() -> None:
    pairs = [
        ("amount", "1500"),
        ("metadata[sale_id]", "42"),
        ("metadata[0]", "kept as a key"),
        ("expand[]", "latest_charge"),
        ("expand[]", "payment_method"),
        ("payment_method_types[0]", "card_present"),
        ("payment_method_types[1]", "interac_present"),
        ("created[gte]", "10"),
        ("card_present[number]", "4242424242424242"),
    ]
    assert parse_form(pairs) == {
        "amount": "1500",
        "metadata": {"sale_id": "42", "0": "kept as a key"},
        "expand": ["latest_charge", "payment_method"],
        "payment_method_types": ["card_present", "interac_present"],
        "created": {"gte": "10"},
        "card_present": {"number": "4242424242424242"},
    }


def test_fake_clock_can_be_frozen_and_advanced() -> None:
    clock = FakeClock(start=100)
    clock.advance(5)
    assert clock.now() == 105
    clock.set(7)
    assert clock.now() == 7


async def test_reset_returns_to_a_fresh_fake_on_the_same_server(
    client: stripe.StripeClient, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next(5)
    fake_stripe.reset()
    first = await authorize(client, idempotency_key="sale:10:authorize")

    fake_stripe.reset()

    assert (fake_stripe.payment_intents(), fake_stripe.requests(), fake_stripe.events()) == ([], [], [])
    again = await authorize(client, idempotency_key="sale:10:authorize")
    assert again.id != first.id
