"""The Stripe adapter of the card-payment port: PaymentIntents with manual capture, Terminal readers
(server-driven), refunds, the day's list for reconciliation and webhook signatures.

With `stripe_errors.py` (the error mapping), the only module that imports `stripe`. Built from settings in
the app's lifespan (`bootstrap.card_gateway`), closed on shutdown; works unchanged against any
Stripe-compatible server at `STRIPE_API_BASE`.

Time budget. Each request attempt has a 30-second timeout (2 seconds to connect); the SDK retries network
errors, 409 and 5xx answers 3 times with the same idempotency key, its back-off capped at a quarter second
because a cashier is waiting; a 429 is retried here (the SDK does not) after its Retry-After, at most twice
and only when Retry-After is short. The whole operation, retries included, must finish within 30 seconds;
past that it fails with `processor_unavailable`, so the register can take cash. A refused
connection fails in about 0.8 s (measured); a network that swallows packets in about 9 s (4 connection
attempts of 2 s plus the back-offs). Nothing is left half-done on
our side: the caller has written nothing yet, and a retry with the same idempotency key finds the original
result at Stripe, so nothing is charged twice; a hold that nobody captures is voided by reconciliation.

Errors: declines become `card_declined` with the reason in plain words; connection failures, timeouts, 5xx,
exhausted rate limits and bad credentials become `processor_unavailable`; invalid states `payment_state`;
over-refunds `refund_exceeds_payment`; readers `card_reader_offline` / `card_reader_busy` /
`card_reader_unknown`. The log line keeps Stripe's request id, type, code and decline code — never card data
(none ever passes through this server: cards are read by Stripe's reader or form).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import httpx
import stripe  # noqa: TID251 - this is the Stripe adapter

from posomni.config import Settings
from posomni.kit.errors import PosError
from posomni.logging import get_logger
from posomni.payments.errors import (
    ReaderBusy,
    ReaderOffline,
    ReaderUnknown,
    UnknownTestCard,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
)
from posomni.payments.gateway import (
    DECLINE_REASONS,
    AuthorizeRequest,
    CardResult,
    CardStatus,
    PaymentStateError,
    ProcessorUnavailable,
    RefundResult,
    RefundTooLarge,
    check_amount,
)
from posomni.payments.reconcile import ProcessorPayment
from posomni.payments.stripe_errors import field, log_error, retry_after, translate

log = get_logger(__name__)
T = TypeVar("T")

NETWORK_RETRIES = 3
TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 0.25
RATE_LIMIT_RETRIES = 2
MAX_RETRY_AFTER_SECONDS = 5.0
WEBHOOK_TOLERANCE_SECONDS = 300

# Stripe's public test cards for a simulated reader's tap (test mode only), by the names the dev endpoint takes.
TEST_CARDS: dict[str, str] = {
    "visa": "4242424242424242",
    "visa_debit": "4000056655665556",
    "mastercard": "5555555555554444",
    "amex": "378282246310005",
    "discover": "6011111111111117",
    "declined": "4000000000000002",
    "insufficient_funds": "4000000000009995",
    "lost_card": "4000000000009987",
    "stolen_card": "4000000000009979",
    "expired": "4000000000000069",
    "processing_error": "4000000000000119",
}

_STATUS = {
    "requires_capture": CardStatus.AUTHORIZED,
    "succeeded": CardStatus.CAPTURED,
    "canceled": CardStatus.VOIDED,
}


class _CardHTTPClient(stripe.HTTPXClient):
    """The SDK's async httpx client with its retry back-off capped: a cashier is waiting for the answer."""

    def __init__(self, *, timeout: httpx.Timeout, max_backoff: float) -> None:
        super().__init__(timeout=timeout)
        self._max_backoff = max_backoff

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(min(secs, self._max_backoff))

    async def close_async(self) -> None:
        await super().close_async()  # type: ignore[no-untyped-call]


def _waiting_intent(action: object) -> str | None:
    """The PaymentIntent a reader action is processing, if it is a process_payment_intent action."""
    found = field(field(action, "process_payment_intent"), "payment_intent")
    if found is None or isinstance(found, str):
        return found
    return str(found.id)


def _plain_reason(code: str | None) -> str | None:
    return DECLINE_REASONS.get(code or "", "the bank refused it") if code else None


def _card_details(intent: stripe.PaymentIntent) -> tuple[str | None, str | None]:
    charge = intent.latest_charge
    details = field(charge, "payment_method_details") if isinstance(charge, stripe.Charge) else None
    card = field(details, "card") or field(details, "card_present")
    return field(card, "brand"), field(card, "last4")


def _refunded(intent: stripe.PaymentIntent) -> int:
    charge = intent.latest_charge
    return charge.amount_refunded if isinstance(charge, stripe.Charge) and charge.captured else 0


def card_result(intent: stripe.PaymentIntent) -> CardResult:
    status = _STATUS.get(intent.status, CardStatus.PENDING)
    error = field(intent, "last_payment_error")
    decline_code: str | None = None
    if intent.status == "requires_payment_method" and error is not None:
        status = CardStatus.DECLINED
        decline_code = field(error, "decline_code") or field(error, "code") or "generic_decline"
    brand, last4 = _card_details(intent)
    return CardResult(
        reference=intent.id,
        status=status,
        amount_authorized_cents=intent.amount,
        amount_captured_cents=intent.amount_received if status is CardStatus.CAPTURED else 0,
        brand=brand,
        last4=last4,
        decline_code=decline_code,
        message=_plain_reason(decline_code),
    )


def _metadata(intent: stripe.PaymentIntent) -> dict[str, str]:
    metadata = field(intent, "metadata")
    raw = cast(Mapping[str, Any], metadata.to_dict() if metadata is not None else {})
    return {str(k): str(v) for k, v in raw.items()}


def _replayed(obj: stripe.StripeObject) -> bool:
    response = obj.last_response
    return response is not None and response.headers.get("idempotent-replayed") == "true"


def verify_webhook_signature(payload: bytes, header: str | None, secret: str) -> None:
    """Raise unless `header` is Stripe's valid, recent (5 minutes) signature of `payload` with `secret`."""
    if not header:
        raise WebhookSignatureMissing()
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, WEBHOOK_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        raise WebhookSignatureInvalid() from None


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        client: stripe.StripeClient,
        http_client: _CardHTTPClient,
        *,
        deadline_seconds: float = TIMEOUT_SECONDS,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        max_retry_after_seconds: float = MAX_RETRY_AFTER_SECONDS,
    ) -> None:
        self._client = client
        self._http_client = http_client
        self._deadline = deadline_seconds
        self._rate_limit_retries = rate_limit_retries
        self._max_retry_after = max_retry_after_seconds

    @classmethod
    def create(
        cls,
        secret_key: str,
        *,
        api_base: str | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        network_retries: int = NETWORK_RETRIES,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        deadline_seconds: float = TIMEOUT_SECONDS,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        max_retry_after_seconds: float = MAX_RETRY_AFTER_SECONDS,
    ) -> StripeGateway:
        # The SDK logs request bodies at DEBUG; keep its logger above that whatever the app's level.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        http_client = _CardHTTPClient(
            timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds), max_backoff=max_backoff_seconds
        )
        client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=network_retries,
            http_client=http_client,
        )
        return cls(
            client,
            http_client,
            deadline_seconds=deadline_seconds,
            rate_limit_retries=rate_limit_retries,
            max_retry_after_seconds=max_retry_after_seconds,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        if settings.stripe_secret_key is None:
            raise ValueError("STRIPE_SECRET_KEY is not set")
        return cls.create(settings.stripe_secret_key.get_secret_value(), api_base=settings.stripe_api_base)

    async def close(self) -> None:
        await self._http_client.close_async()

    # ---- the port -------------------------------------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> CardResult:
        check_amount(request.amount_cents)
        if request.reader_id is None and not request.payment_method:
            raise PaymentStateError("A card payment needs a card reader or a payment method.")
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": request.amount_cents,
            "currency": request.currency.lower(),
            "capture_method": "manual",
            "description": request.description or request.reference,
            "metadata": {**request.metadata, "reference": request.reference},
            "expand": ["latest_charge"],
        }
        options: stripe.RequestOptions = {"idempotency_key": request.idempotency_key}
        intents = self._client.v1.payment_intents
        if request.reader_id is not None:
            params["allowed_payment_method_types"] = ["card_present"]
        else:
            params["allowed_payment_method_types"] = ["card"]
            params["payment_method"] = request.payment_method or ""
            params["confirm"] = True
            # A register cannot show a 3-D Secure challenge: such a card fails now instead of hanging.
            params["error_on_requires_action"] = True
        intent = await self._call(
            "authorize", lambda: intents.create_async(params, options), request.reference, request.request_id
        )
        if request.reader_id is not None:
            await self._send_to_reader(request, intent.id)
        if _replayed(intent):
            # A retry of an earlier attempt: answer with the payment as it is now, as a processor would.
            return await self.retrieve(intent.id, request_id=request.request_id)
        return card_result(intent)

    async def _send_to_reader(self, request: AuthorizeRequest, intent_id: str) -> None:
        assert request.reader_id is not None
        reader_id = request.reader_id
        readers = self._client.v1.terminal.readers
        options: stripe.RequestOptions = {"idempotency_key": f"{request.idempotency_key}:reader"}
        try:
            await self._call(
                "process_on_reader",
                lambda: readers.process_payment_intent_async(reader_id, {"payment_intent": intent_id}, options),
                intent_id,
                request.request_id,
            )
        except (ReaderOffline, ReaderBusy, ReaderUnknown):
            # The intent holds no money yet; cancel it so the failed attempt leaves nothing open.
            try:
                await self.void(intent_id, idempotency_key=f"{request.idempotency_key}:abandon")
            except PosError:
                log.warning("stripe_abandon_failed", reference=intent_id, request_id=request.request_id)
            raise

    async def retrieve(self, reference: str, *, request_id: str | None = None) -> CardResult:
        intents = self._client.v1.payment_intents
        intent = await self._call(
            "retrieve", lambda: intents.retrieve_async(reference, {"expand": ["latest_charge"]}), reference, request_id
        )
        return card_result(intent)

    async def capture(
        self, reference: str, amount_cents: int, *, idempotency_key: str, request_id: str | None = None
    ) -> CardResult:
        if amount_cents < 1:
            raise PaymentStateError("The capture amount must be at least one cent.")
        intents = self._client.v1.payment_intents
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        intent = await self._call(
            "capture",
            lambda: intents.capture_async(
                reference, {"amount_to_capture": amount_cents, "expand": ["latest_charge"]}, options
            ),
            reference,
            request_id,
        )
        return card_result(intent)

    async def void(self, reference: str, *, idempotency_key: str, request_id: str | None = None) -> CardResult:
        intents = self._client.v1.payment_intents
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        try:
            intent = await self._call(
                "void",
                lambda: intents.cancel_async(reference, {"expand": ["latest_charge"]}, options),
                reference,
                request_id,
            )
        except PaymentStateError:
            current = await self.retrieve(reference, request_id=request_id)
            if current.status is CardStatus.VOIDED:
                return current
            if current.status is CardStatus.CAPTURED:
                raise PaymentStateError("A captured payment is refunded, not voided.") from None
            raise
        return card_result(intent)

    async def refund(
        self, reference: str, amount_cents: int, *, idempotency_key: str, request_id: str | None = None
    ) -> RefundResult:
        if amount_cents < 1:
            raise RefundTooLarge("A refund must be at least one cent.", details={"requested_cents": amount_cents})
        refunds = self._client.v1.refunds
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        try:
            refund = await self._call(
                "refund",
                lambda: refunds.create_async({"payment_intent": reference, "amount": amount_cents}, options),
                reference,
                request_id,
            )
        except RefundTooLarge:
            remaining = await self._refundable(reference, request_id)
            raise RefundTooLarge(details={"remaining_cents": remaining, "requested_cents": amount_cents}) from None
        return RefundResult(reference=refund.id, amount_cents=refund.amount, status=refund.status or "pending")

    async def _refundable(self, reference: str, request_id: str | None) -> int | None:
        try:
            intents = self._client.v1.payment_intents
            intent = await self._call(
                "retrieve",
                lambda: intents.retrieve_async(reference, {"expand": ["latest_charge"]}),
                reference,
                request_id,
            )
        except PosError:
            return None
        charge = intent.latest_charge
        if not isinstance(charge, stripe.Charge):
            return None
        return charge.amount_captured - charge.amount_refunded

    async def cancel_reader(self, reader_id: str, *, request_id: str | None = None) -> None:
        """Stop the reader waiting for a card and void the payment it was waiting for (as the simulated
        processor does). A payment the reader already authorised is left for the caller to void."""
        readers = self._client.v1.terminal.readers
        reader = await self._call("reader", lambda: readers.retrieve_async(reader_id), reader_id, request_id)
        action = field(reader, "action")
        waiting = _waiting_intent(action) if field(action, "status") == "in_progress" else None
        await self._call("cancel_reader", lambda: readers.cancel_action_async(reader_id), reader_id, request_id)
        if waiting is not None:
            await self.void(waiting, idempotency_key=f"reader:{reader_id}:cancel:{waiting}", request_id=request_id)

    # ---- beyond the port: test taps and reconciliation ------------------------------------------------

    async def simulate_tap(self, reader_id: str, card: str = "visa", *, request_id: str | None = None) -> CardResult:
        """Test mode: the customer taps one of Stripe's test cards (`TEST_CARDS`) on a simulated reader."""
        number = TEST_CARDS.get(card)
        if number is None:
            raise UnknownTestCard(details={"card": card[:40], "known": sorted(TEST_CARDS)})
        helpers = self._client.v1.test_helpers.terminal.readers
        reader = await self._call(
            "simulate_tap",
            lambda: helpers.present_payment_method_async(
                reader_id, {"type": "card_present", "card_present": {"number": number}}
            ),
            reader_id,
            request_id,
        )
        intent_id = _waiting_intent(field(reader, "action"))
        if intent_id is None:
            raise PaymentStateError("No payment is waiting on that reader.")
        return await self.retrieve(intent_id, request_id=request_id)

    async def list_payments(
        self, *, created_from: datetime, created_to: datetime, page_size: int = 100
    ) -> list[ProcessorPayment]:
        """Every PaymentIntent created in [created_from, created_to), newest first, page by page."""
        intents = self._client.v1.payment_intents
        window: stripe.params.PaymentIntentListParamsCreated = {
            "gte": int(created_from.timestamp()),
            "lt": int(created_to.timestamp()),
        }
        found: list[ProcessorPayment] = []
        after: str | None = None
        while True:
            params: stripe.params.PaymentIntentListParams = {
                "created": window,
                "limit": page_size,
                "expand": ["data.latest_charge"],
            }
            if after is not None:
                params["starting_after"] = after
            page = await self._call("list", functools.partial(intents.list_async, params), None, None)
            for intent in page.data:
                result = card_result(intent)
                found.append(
                    ProcessorPayment(
                        reference=intent.id,
                        status=result.status,
                        amount_cents=intent.amount,
                        captured_cents=result.amount_captured_cents,
                        refunded_cents=_refunded(intent),
                        currency=intent.currency,
                        created_at=datetime.fromtimestamp(intent.created, UTC),
                        metadata=_metadata(intent),
                    )
                )
            if not page.has_more or not page.data:
                return found
            after = page.data[-1].id

    # ---- calls, retries and errors --------------------------------------------------------------------

    async def _call(
        self, operation: str, send: Callable[[], Awaitable[T]], reference: str | None, request_id: str | None
    ) -> T:
        try:
            async with asyncio.timeout(self._deadline):
                return await self._send_with_rate_limit(operation, send, reference, request_id)
        except TimeoutError:
            log.warning(
                "stripe_deadline_exceeded",
                operation=operation,
                reference=reference,
                request_id=request_id,
                seconds=self._deadline,
            )
            raise ProcessorUnavailable() from None

    async def _send_with_rate_limit(
        self, operation: str, send: Callable[[], Awaitable[T]], reference: str | None, request_id: str | None
    ) -> T:
        attempt = 0
        while True:
            try:
                return await send()
            except stripe.RateLimitError as exc:
                delay = retry_after(exc)
                if attempt >= self._rate_limit_retries or delay > self._max_retry_after:
                    log_error(operation, exc, reference, request_id, level="warning")
                    raise ProcessorUnavailable(
                        "Card payments are busy right now; try again in a moment. Cash still works.",
                        headers={"Retry-After": str(max(1, round(delay)))},
                        details={"retry_after_seconds": max(1, round(delay))},
                    ) from exc
                attempt += 1
                log.info(
                    "stripe_rate_limited",
                    operation=operation,
                    retry_after=delay,
                    attempt=attempt,
                    stripe_request_id=exc.request_id,
                    request_id=request_id,
                )
                # Same call, same idempotency key: a 429 was never processed, so nothing can happen twice.
                await asyncio.sleep(delay)
            except stripe.StripeError as exc:
                raise translate(operation, exc, reference, request_id) from exc
