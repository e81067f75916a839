from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from posomni.auth.dependencies import require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.customers import service
from posomni.customers.schemas import CustomerIn, CustomerOut
from posomni.dependencies import DbSession

router = APIRouter(prefix="/customers", tags=["customers"])
Staff = Annotated[Principal, Depends(require(Permission.CUSTOMERS_MANAGE))]


@router.get("/lookup", response_model=CustomerOut)
async def lookup(
    session: DbSession,
    principal: Staff,
    phone: Annotated[str | None, Query(max_length=20)] = None,
    card: Annotated[str | None, Query(max_length=32)] = None,
) -> CustomerOut:
    return CustomerOut.model_validate(await service.find(session, phone=phone, card=card))


@router.post("", response_model=CustomerOut, status_code=201)
async def create(body: CustomerIn, session: DbSession, principal: Staff) -> CustomerOut:
    return CustomerOut.model_validate(await service.create(session, body))


@router.get("/{customer_id}", response_model=CustomerOut)
async def get(customer_id: int, session: DbSession, principal: Staff) -> CustomerOut:
    return CustomerOut.model_validate(await service.get(session, customer_id))
