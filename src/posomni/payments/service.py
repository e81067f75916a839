"""Card payment rules shared by the checkout, the webhooks and reconciliation.

The payment state machine. A payment row only ever moves forward along these arrows, so late, repeated or
out-of-order news — a webhook delivered twice, an event older than what the register already learnt, a poll
racing a webhook — never moves it backwards:

    pending ──► authorized ──► captured ──► partially_refunded ──► refunded
       │            │              │                                  ▲
       │            │              └──────────────────────────────────┘  (refunded in full at once)
       │            └──► voided
       └──► captured (captured at once) · voided (cancelled on the reader) · failed (declined)

`voided`, `failed` and `refunded` are final. A declined card ends its payment: another try is a new payment
with a new idempotency key. `refunded_cents` is the total refunded at the processor and only ever rises
(`note_refunded`): writers set it to what they know, never add to it, so two writers learning of the same
refund (the return that made it and Stripe's `charge.refunded`) cannot count it twice.

Nothing here commits (the caller's transaction does) and nothing holds a row lock across a processor call:
`refresh_card_payment` asks the processor first, then locks the row to apply the answer.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from posomni.config import Settings
from posomni.payments.errors import DevelopmentOnly, UnknownTestCard
from posomni.payments.gateway import (
    CardPaymentsDisabled,
    CardResult,
    CardStatus,
    PaymentGateway,
    PaymentStateError,
    declined,
)
from posomni.payments.models import Payment, PaymentStatus
from posomni.payments.simulated import SimulatedCardProcessor
from posomni.payments.stripe_adapter import TEST_CARDS, StripeGateway

S = PaymentStatus
NEXT: Final[dict[PaymentStatus, frozenset[PaymentStatus]]] = {
    S.PENDING: frozenset({S.AUTHORIZED, S.CAPTURED, S.VOIDED, S.FAILED}),
    S.AUTHORIZED: frozenset({S.CAPTURED, S.VOIDED}),
    S.CAPTURED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.VOIDED: frozenset(),
    S.FAILED: frozenset(),
}
FINAL: Final = frozenset(s for s, after in NEXT.items() if not after)

STATUS_OF_CARD: Final[dict[CardStatus, PaymentStatus]] = {
    CardStatus.PENDING: S.PENDING,
    CardStatus.AUTHORIZED: S.AUTHORIZED,
    CardStatus.CAPTURED: S.CAPTURED,
    CardStatus.VOIDED: S.VOIDED,
    CardStatus.DECLINED: S.FAILED,
}

# The dev endpoint's test cards, for the simulated processor (Stripe's are `stripe_adapter.TEST_CARDS`).
SIMULATED_TEST_CARDS: Final = {
    "visa": "pm_sim_visa",
    "mastercard": "pm_sim_mastercard",
    "amex": "pm_sim_amex",
    "declined": "pm_sim_declined",
    "insufficient_funds": "pm_sim_insufficient_funds",
    "expired": "pm_sim_expired",
}


def can_move(current: str, target: PaymentStatus) -> bool:
    try:
        return target in NEXT[PaymentStatus(current)]
    except ValueError:
        return False


def card_idempotency_key(sale_id: int, step: str, attempt: int = 1) -> str:
    """A deterministic key for one step of one card attempt of a sale: `sale:7:card:1:authorize`. Retrying the
    same step reuses it (never charged twice); a new attempt after a decline takes the next `attempt`."""
    return f"sale:{sale_id}:card:{attempt}:{step}"


def move(payment: Payment, target: PaymentStatus) -> bool:
    """Move `payment` to `target` when the state machine allows it; False (and no change) otherwise."""
    if payment.status == target.value or not can_move(payment.status, target):
        return False
    payment.status = target.value
    return True


def note_refunded(payment: Payment, total_refunded_cents: int) -> bool:
    """Record that `total_refunded_cents` (in all) of a captured payment has been refunded at the processor.
    Only ever raises the total (capped at the captured amount); returns whether anything changed."""
    if payment.status not in (S.CAPTURED.value, S.PARTIALLY_REFUNDED.value, S.REFUNDED.value):
        return False
    total = min(total_refunded_cents, payment.captured_cents)
    if total <= payment.refunded_cents:
        return False
    payment.refunded_cents = total
    move(payment, S.REFUNDED if total >= payment.captured_cents else S.PARTIALLY_REFUNDED)
    return True


def apply_card_result(payment: Payment, result: CardResult) -> bool:
    """Bring a card payment row up to date with the processor's answer, forward only. Fills the reference,
    brand and last four digits when missing. Returns whether anything changed."""
    before = (payment.status, payment.provider_reference, payment.card_brand, payment.card_last4)
    if payment.provider_reference is None:
        payment.provider_reference = result.reference
    payment.card_brand = payment.card_brand or result.brand
    payment.card_last4 = payment.card_last4 or result.last4
    target = STATUS_OF_CARD[result.status]
    if move(payment, target):
        if target is S.CAPTURED:
            payment.captured_cents = result.amount_captured_cents or payment.amount_cents
        elif target is S.FAILED:
            refusal = declined(result.decline_code)
            payment.failure_code = result.decline_code or refusal.code
            payment.failure_message = refusal.message[:300]
    return before != (payment.status, payment.provider_reference, payment.card_brand, payment.card_last4)


async def refresh_card_payment(session: AsyncSession, gateway: PaymentGateway, payment: Payment) -> Payment:
    """Ask the processor about a card payment that is still pending (a card-present payment waiting for the
    customer's tap) or authorised, and update its row. On SQLite a transaction already open on `session`
    keeps the write lock during the processor call: call this before touching the database, or in a
    transaction of its own."""
    if payment.tender != "card" or payment.provider_reference is None:
        raise PaymentStateError("This payment has no card reference to ask the processor about.")
    if PaymentStatus(payment.status) in FINAL:
        return payment
    result = await gateway.retrieve(payment.provider_reference)
    # Lock the row only now, after the network call, and apply the answer to its latest state.
    await session.refresh(payment, with_for_update=True)
    apply_card_result(payment, result)
    await session.flush()
    return payment


async def cancel_reader_payment(
    session: AsyncSession, gateway: PaymentGateway, payment: Payment, reader_id: str, *, request_id: str | None = None
) -> Payment:
    """The register cancels a card-present payment still waiting on its reader: the reader stops, the intent
    is voided and the row follows. A payment the customer already authorised is voided too."""
    if payment.tender != "card" or payment.provider_reference is None:
        raise PaymentStateError("This payment has no card reference to cancel.")
    await gateway.cancel_reader(reader_id, request_id=request_id)
    current = await gateway.retrieve(payment.provider_reference, request_id=request_id)
    if current.status is CardStatus.AUTHORIZED:
        current = await gateway.void(
            payment.provider_reference,
            idempotency_key=f"payment:{payment.id}:cancel-reader",
            request_id=request_id,
        )
    await session.refresh(payment, with_for_update=True)
    apply_card_result(payment, current)
    await session.flush()
    return payment


async def present_test_card(
    settings: Settings, gateway: PaymentGateway | None, reader_id: str, card: str, *, request_id: str | None = None
) -> CardResult:
    """Development and tests: the customer taps a test card on the register's reader — through Stripe's test
    helper for a simulated Stripe reader, or `SimulatedCardProcessor.present_card`. Refused in production."""
    if settings.is_production:
        raise DevelopmentOnly()
    if gateway is None:
        raise CardPaymentsDisabled()
    if isinstance(gateway, StripeGateway):
        return await gateway.simulate_tap(reader_id, card, request_id=request_id)
    if isinstance(gateway, SimulatedCardProcessor):
        method = SIMULATED_TEST_CARDS.get(card)
        if method is None:
            raise UnknownTestCard(details={"card": card[:40], "known": sorted(SIMULATED_TEST_CARDS)})
        return await gateway.present_card(reader_id, method)
    raise DevelopmentOnly("This card processor has no test reader.")


def known_test_cards(gateway: PaymentGateway | None) -> list[str]:
    if isinstance(gateway, StripeGateway):
        return sorted(TEST_CARDS)
    return sorted(SIMULATED_TEST_CARDS)
