from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from posomni.auth.dependencies import Auth, request_id_of, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.dependencies import AppSettings, DbSession
from posomni.payments import service, webhooks
from posomni.payments.dependencies import CardGateway
from posomni.payments.schemas import CardResultOut, SimulatedTap, WebhookAck

router = APIRouter(tags=["payments"])
Seller = Annotated[Principal, Depends(require(Permission.SELL))]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "No signature, a wrong or stale one (webhook_signature_*), or not an event"},
    500: {"description": "Stored but not processed (webhook_processing_failed): Stripe delivers it again"},
    503: {"description": "STRIPE_WEBHOOK_SECRET is not set (webhook_not_configured)"},
}


@router.post("/webhooks/stripe", response_model=WebhookAck, responses=_REFUSALS)
async def stripe_webhook(request: Request, session: DbSession, auth: Auth, settings: AppSettings) -> WebhookAck:
    """Stripe's events, authenticated by their signature (no sign-in): stored once, then applied."""
    secret = settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else None
    receipt = await webhooks.receive(
        session,
        auth.crypto,
        await request.body(),
        request.headers.get("stripe-signature"),
        secret,
        request_id=request_id_of(request),
    )
    return WebhookAck(event_id=receipt.event_id, duplicate=receipt.duplicate, outcome=receipt.outcome)


@router.post("/payments/dev/readers/{reader_id}/present", response_model=CardResultOut)
async def present_test_card(
    reader_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")],
    body: SimulatedTap,
    request: Request,
    settings: AppSettings,
    gateway: CardGateway,
    principal: Seller,
) -> CardResultOut:
    """Development and tests only (refused in production): a customer taps a test card on the reader."""
    result = await service.present_test_card(settings, gateway, reader_id, body.card, request_id=request_id_of(request))
    return CardResultOut.of(result)
