"""The card-payment port. Domain code talks to this; adapters (the simulated processor for development, Stripe)
implement it. Amounts are integer cents. No adapter ever receives or returns a card number: cards are read
by the processor's own reader or form, and only a reference, brand and last four digits come back."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from posomni.kit.errors import PosError, ServiceUnavailable, ValidationFailed

# Per card payment (seed rule and checklist §3); larger sales split the tender.
MIN_CARD_CENTS = 1
MAX_CARD_CENTS = 1_000_000


class CardStatus(enum.StrEnum):
    # The reader is waiting for the customer's card (card-present, server-driven).
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    DECLINED = "declined"


@dataclass(frozen=True)
class AuthorizeRequest:
    amount_cents: int
    currency: str
    idempotency_key: str
    # "sale:<id>" and similar: shown in the processor's dashboard, used by reconciliation.
    reference: str
    # A keyed/online payment method id, or the register's card reader (card-present).
    payment_method: str | None = None
    reader_id: str | None = None
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None


@dataclass(frozen=True)
class CardResult:
    reference: str
    status: CardStatus
    amount_authorized_cents: int
    amount_captured_cents: int = 0
    brand: str | None = None
    last4: str | None = None
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class RefundResult:
    reference: str
    amount_cents: int
    status: str


class PaymentError(PosError):
    """Base of card failures the cashier sees."""


class CardDeclined(PaymentError):
    status_code = 402
    code = "card_declined"
    default_message = "The card was declined. Ask for another card or another tender."


class ProcessorUnavailable(PaymentError, ServiceUnavailable):
    code = "processor_unavailable"
    default_message = "Card payments are unavailable right now. Cash still works."


class CardPaymentsDisabled(PaymentError, ServiceUnavailable):
    code = "card_payments_disabled"
    default_message = "Card payments are not set up on this system. Cash still works."


class AmountOutOfRange(PaymentError, ValidationFailed):
    code = "amount_out_of_range"
    default_message = "A card payment must be between $0.01 and $10,000.00; split larger amounts."


class RefundTooLarge(PaymentError, ValidationFailed):
    code = "refund_exceeds_payment"
    default_message = "The refund is larger than what remains of the payment."


class PaymentStateError(PaymentError):
    status_code = 409
    code = "payment_state"
    default_message = "The payment is not in a state that allows this."


# Plain words for the cashier, keyed by the processor's decline code.
DECLINE_REASONS: dict[str, str] = {
    "insufficient_funds": "insufficient funds",
    "expired_card": "the card has expired",
    "incorrect_cvc": "the security code is wrong",
    "lost_card": "the card was reported lost",
    "stolen_card": "the card was reported stolen",
    "card_velocity_exceeded": "the card's spending limit was reached",
    "do_not_honor": "the bank refused it",
    "generic_decline": "the bank refused it",
    "processing_error": "the bank could not process it; try again",
    "incorrect_number": "the card number is wrong",
    "pickup_card": "the bank asks to keep the card",
}


def declined(decline_code: str | None, *, processor_message: str | None = None) -> CardDeclined:
    reason = DECLINE_REASONS.get(decline_code or "", "the bank refused it")
    return CardDeclined(
        f"The card was declined: {reason}. Ask for another card or another tender.",
        details={"decline_code": decline_code or "generic_decline", "reason": reason},
    )


def check_amount(amount_cents: int) -> None:
    if not MIN_CARD_CENTS <= amount_cents <= MAX_CARD_CENTS:
        raise AmountOutOfRange(details={"amount_cents": amount_cents, "min": MIN_CARD_CENTS, "max": MAX_CARD_CENTS})


class PaymentGateway(Protocol):
    name: str

    async def authorize(self, request: AuthorizeRequest) -> CardResult:
        """Authorise (not capture). Card-present: returns PENDING while the reader waits for the card.
        Raises CardDeclined, ProcessorUnavailable or AmountOutOfRange."""
        ...

    async def retrieve(self, reference: str, *, request_id: str | None = None) -> CardResult: ...

    async def capture(
        self, reference: str, amount_cents: int, *, idempotency_key: str, request_id: str | None = None
    ) -> CardResult:
        """Capture up to the authorised amount."""
        ...

    async def void(self, reference: str, *, idempotency_key: str, request_id: str | None = None) -> CardResult:
        """Cancel an uncaptured authorisation."""
        ...

    async def refund(
        self, reference: str, amount_cents: int, *, idempotency_key: str, request_id: str | None = None
    ) -> RefundResult:
        """Refund part or all of a captured payment; several partial refunds up to the captured amount."""
        ...

    async def cancel_reader(self, reader_id: str, *, request_id: str | None = None) -> None: ...

    async def close(self) -> None: ...
