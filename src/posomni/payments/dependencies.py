"""The card processor built in the lifespan, for routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from posomni.payments.gateway import CardPaymentsDisabled, PaymentGateway


def get_card_gateway(request: Request) -> PaymentGateway | None:
    gateway: PaymentGateway | None = getattr(request.app.state, "card_gateway", None)
    return gateway


def require_card_gateway(request: Request) -> PaymentGateway:
    gateway = get_card_gateway(request)
    if gateway is None:
        raise CardPaymentsDisabled()
    return gateway


CardGateway = Annotated[PaymentGateway | None, Depends(get_card_gateway)]
RequiredCardGateway = Annotated[PaymentGateway, Depends(require_card_gateway)]
