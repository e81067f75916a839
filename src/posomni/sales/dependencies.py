from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from posomni.sales.reader_saga import ReaderPayments
from posomni.sales.refund_saga import Refunds
from posomni.sales.saga import Checkout


def get_checkout(request: Request) -> Checkout:
    state = request.app.state
    return Checkout(state.database, state.crypto, state.card_gateway)


def get_refunds(request: Request) -> Refunds:
    state = request.app.state
    return Refunds(state.database, state.crypto, state.card_gateway)


def get_reader_payments(request: Request) -> ReaderPayments:
    state = request.app.state
    return ReaderPayments(state.database, state.card_gateway)


CheckoutDep = Annotated[Checkout, Depends(get_checkout)]
RefundsDep = Annotated[Refunds, Depends(get_refunds)]
ReaderDep = Annotated[ReaderPayments, Depends(get_reader_payments)]
