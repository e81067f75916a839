from __future__ import annotations

from pydantic import BaseModel, Field

from posomni.payments.gateway import CardResult


class SimulatedTap(BaseModel):
    card: str = Field(
        default="visa",
        max_length=40,
        pattern=r"^[a-z_]+$",
        description="A test card by name: visa, mastercard, amex, declined, insufficient_funds, expired …",
    )


class CardResultOut(BaseModel):
    reference: str
    status: str
    amount_authorized_cents: int
    amount_captured_cents: int
    brand: str | None
    last4: str | None
    decline_code: str | None
    message: str | None

    @classmethod
    def of(cls, result: CardResult) -> CardResultOut:
        return cls(
            reference=result.reference,
            status=result.status.value,
            amount_authorized_cents=result.amount_authorized_cents,
            amount_captured_cents=result.amount_captured_cents,
            brand=result.brand,
            last4=result.last4,
            decline_code=result.decline_code,
            message=result.message,
        )


class WebhookAck(BaseModel):
    received: bool = True
    event_id: str
    duplicate: bool
    outcome: str | None
