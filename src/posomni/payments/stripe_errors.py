"""Stripe's errors in the port's words, and the log line that keeps Stripe's side of the story.

Part of the Stripe adapter (`stripe_adapter.py`); the only other module allowed to import `stripe`. The log line
has Stripe's request id, error type, code, decline code and parameter, and the message with anything card-like
masked — never card data, which never reaches this server anyway.
"""

from __future__ import annotations

from typing import Any

import stripe  # noqa: TID251 - part of the Stripe adapter

from posomni.kit.errors import PosError
from posomni.logging import get_logger
from posomni.payments.errors import IdempotencyConflict, ProcessorRejected, ReaderBusy, ReaderOffline, ReaderUnknown
from posomni.payments.gateway import (
    AmountOutOfRange,
    PaymentStateError,
    ProcessorUnavailable,
    RefundTooLarge,
    declined,
)
from posomni.security.pci import scrub

log = get_logger(__name__)


def field(obj: object, name: str) -> Any:
    """A field of a Stripe object, or None: the SDK raises AttributeError for fields the answer left out."""
    return None if obj is None else getattr(obj, name, None)


def retry_after(exc: stripe.StripeError) -> float:
    try:
        return max(0.0, float((exc.headers or {}).get("retry-after", "1")))
    except ValueError:
        return 1.0


def log_error(
    operation: str,
    exc: stripe.StripeError,
    reference: str | None,
    request_id: str | None,
    *,
    level: str,
) -> None:
    error = exc.error
    getattr(log, level)(
        "stripe_error",
        operation=operation,
        reference=reference,
        request_id=request_id,
        stripe_request_id=exc.request_id,
        http_status=exc.http_status,
        error_class=type(exc).__name__,
        error_type=field(error, "type"),
        code=exc.code,
        decline_code=field(error, "decline_code"),
        param=field(error, "param"),
        message=scrub(exc.user_message or str(exc))[:500],
    )


def translate(operation: str, exc: stripe.StripeError, reference: str | None, request_id: str | None) -> PosError:
    if isinstance(exc, stripe.CardError):
        log_error(operation, exc, reference, request_id, level="info")
        decline_code = field(exc.error, "decline_code")
        return declined(decline_code or exc.code)
    if isinstance(exc, stripe.APIConnectionError | stripe.APIError):
        log_error(operation, exc, reference, request_id, level="warning")
        return ProcessorUnavailable()
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # A wrong or revoked key: the operator must fix the configuration; cash still works meanwhile.
        log_error(operation, exc, reference, request_id, level="error")
        return ProcessorUnavailable()
    if isinstance(exc, stripe.IdempotencyError):
        log_error(operation, exc, reference, request_id, level="error")
        return IdempotencyConflict()
    translated = _translate_invalid(operation, exc)
    level = "info" if not isinstance(translated, ProcessorRejected) else "error"
    log_error(operation, exc, reference, request_id, level=level)
    return translated


def _translate_invalid(operation: str, exc: stripe.StripeError) -> PosError:
    code = exc.code or ""
    if code == "resource_missing":
        if operation in ("reader", "cancel_reader", "process_on_reader", "simulate_tap") and "reader" in str(exc):
            return ReaderUnknown()
        return PaymentStateError("Unknown payment reference.")
    if code == "terminal_reader_offline":
        return ReaderOffline()
    if code == "terminal_reader_busy":
        return ReaderBusy()
    if code == "amount_too_small":
        return AmountOutOfRange("The amount is below the card processor's minimum; take cash for it.")
    if operation == "refund" and code in ("amount_too_large", "charge_already_refunded"):
        return RefundTooLarge()
    if operation == "refund" and code in ("charge_not_refundable", "payment_intent_unexpected_state"):
        return PaymentStateError("Only a captured payment can be refunded.")
    if operation == "capture" and code == "amount_too_large":
        return PaymentStateError("Capture exceeds the authorised amount.")
    if code == "payment_intent_unexpected_state":
        return PaymentStateError()
    if operation == "simulate_tap":
        return PaymentStateError("No payment is waiting on that reader.")
    return ProcessorRejected()
