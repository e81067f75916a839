"""A card processor simulated in memory, for development and tests only (production refuses to start with it).

Payment methods decide the outcome, like a processor's test cards: `pm_sim_visa`, `pm_sim_mastercard`,
`pm_sim_amex` succeed; `pm_sim_declined`, `pm_sim_insufficient_funds`, `pm_sim_expired` are declined;
`pm_sim_unavailable` behaves like an unreachable processor. A card-present request (`reader_id`) stays PENDING
until `present_card(reader_id, method)` is called, as a customer's tap would."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace

from posomni.payments.gateway import (
    AuthorizeRequest,
    CardResult,
    CardStatus,
    PaymentStateError,
    ProcessorUnavailable,
    RefundResult,
    RefundTooLarge,
    check_amount,
    declined,
)

_BRANDS = {
    "pm_sim_visa": ("visa", "4242"),
    "pm_sim_mastercard": ("mastercard", "4444"),
    "pm_sim_amex": ("amex", "8431"),
}
_DECLINES = {
    "pm_sim_declined": "generic_decline",
    "pm_sim_insufficient_funds": "insufficient_funds",
    "pm_sim_expired": "expired_card",
}


@dataclass
class _Intent:
    result: CardResult
    refunded_cents: int = 0
    reader_id: str | None = None


class SimulatedCardProcessor:
    name = "simulated"

    def __init__(self) -> None:
        self._intents: dict[str, _Intent] = {}
        self._by_key: dict[str, CardResult | RefundResult] = {}
        self._counter = itertools.count(1)
        self._lock = asyncio.Lock()
        # Calls per operation, so tests can prove "charged once".
        self.calls: dict[str, int] = {}

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    async def authorize(self, request: AuthorizeRequest) -> CardResult:
        check_amount(request.amount_cents)
        async with self._lock:
            self._count("authorize")
            replay = self._by_key.get(request.idempotency_key)
            if isinstance(replay, CardResult):
                current = self._intents[replay.reference].result
                if current.status is CardStatus.DECLINED:
                    raise declined(current.decline_code)
                return current
            method = request.payment_method or ""
            if method == "pm_sim_unavailable":
                raise ProcessorUnavailable()
            reference = f"sim_pi_{next(self._counter):06d}"
            if request.reader_id is not None:
                result = CardResult(reference, CardStatus.PENDING, request.amount_cents)
                self._intents[reference] = _Intent(result, reader_id=request.reader_id)
            elif method in _DECLINES:
                self._by_key[request.idempotency_key] = CardResult(reference, CardStatus.DECLINED, 0)
                self._intents[reference] = _Intent(
                    CardResult(reference, CardStatus.DECLINED, 0, decline_code=_DECLINES[method])
                )
                raise declined(_DECLINES[method])
            elif method in _BRANDS:
                brand, last4 = _BRANDS[method]
                result = CardResult(reference, CardStatus.AUTHORIZED, request.amount_cents, brand=brand, last4=last4)
                self._intents[reference] = _Intent(result)
            else:
                raise declined("incorrect_number")
            self._by_key[request.idempotency_key] = result
            return result

    async def present_card(self, reader_id: str, method: str = "pm_sim_visa") -> CardResult:
        """The customer taps a card on the reader (development and tests)."""
        async with self._lock:
            intent = next(
                (
                    i
                    for i in self._intents.values()
                    if i.reader_id == reader_id and i.result.status is CardStatus.PENDING
                ),
                None,
            )
            if intent is None:
                raise PaymentStateError("No payment is waiting on that reader.")
            if method in _DECLINES:
                intent.result = replace(intent.result, status=CardStatus.DECLINED, decline_code=_DECLINES[method])
            else:
                brand, last4 = _BRANDS.get(method, ("visa", "4242"))
                intent.result = replace(intent.result, status=CardStatus.AUTHORIZED, brand=brand, last4=last4)
            return intent.result

    async def retrieve(self, reference: str, *, request_id: str | None = None) -> CardResult:
        intent = self._intents.get(reference)
        if intent is None:
            raise PaymentStateError("Unknown payment reference.", details={"reference": reference})
        return intent.result

    async def capture(
        self, reference: str, amount_cents: int, *, idempotency_key: str, request_id: str | None = None
    ) -> CardResult:
        async with self._lock:
            self._count("capture")
            intent = self._intents.get(reference)
            if intent is None:
                raise PaymentStateError("Unknown payment reference.", details={"reference": reference})
            if intent.result.status is CardStatus.CAPTURED and idempotency_key in self._by_key:
                return intent.result
            if intent.result.status is not CardStatus.AUTHORIZED:
                raise PaymentStateError(details={"status": intent.result.status.value})
            if not 0 < amount_cents <= intent.result.amount_authorized_cents:
                raise PaymentStateError("Capture exceeds the authorised amount.")
            intent.result = replace(intent.result, status=CardStatus.CAPTURED, amount_captured_cents=amount_cents)
            self._by_key[idempotency_key] = intent.result
            return intent.result

    async def void(self, reference: str, *, idempotency_key: str, request_id: str | None = None) -> CardResult:
        async with self._lock:
            self._count("void")
            intent = self._intents.get(reference)
            if intent is None:
                raise PaymentStateError("Unknown payment reference.", details={"reference": reference})
            if intent.result.status in (CardStatus.VOIDED, CardStatus.DECLINED):
                return intent.result
            if intent.result.status is CardStatus.CAPTURED:
                raise PaymentStateError("A captured payment is refunded, not voided.")
            intent.result = replace(intent.result, status=CardStatus.VOIDED)
            return intent.result

    async def refund(
        self, reference: str, amount_cents: int, *, idempotency_key: str, request_id: str | None = None
    ) -> RefundResult:
        async with self._lock:
            self._count("refund")
            replay = self._by_key.get(idempotency_key)
            if isinstance(replay, RefundResult):
                return replay
            intent = self._intents.get(reference)
            if intent is None or intent.result.status is not CardStatus.CAPTURED:
                raise PaymentStateError("Only a captured payment can be refunded.")
            remaining = intent.result.amount_captured_cents - intent.refunded_cents
            if not 0 < amount_cents <= remaining:
                raise RefundTooLarge(details={"remaining_cents": remaining, "requested_cents": amount_cents})
            intent.refunded_cents += amount_cents
            result = RefundResult(f"sim_re_{next(self._counter):06d}", amount_cents, "succeeded")
            self._by_key[idempotency_key] = result
            return result

    async def cancel_reader(self, reader_id: str, *, request_id: str | None = None) -> None:
        async with self._lock:
            for intent in self._intents.values():
                if intent.reader_id == reader_id and intent.result.status is CardStatus.PENDING:
                    intent.result = replace(intent.result, status=CardStatus.VOIDED)

    async def close(self) -> None:
        return None
