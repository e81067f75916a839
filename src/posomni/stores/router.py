from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request

from posomni.auth.dependencies import Auth, actor, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.dependencies import DbSession
from posomni.stores import service
from posomni.stores.schemas import (
    RegisterCreate,
    RegisterOut,
    RegisterUpdate,
    StoreOut,
    StoreSettingsOut,
    StoreUpdate,
)

router = APIRouter(tags=["stores"])
# Bounded so an absurd id is a 422, not a 64-bit overflow inside the database driver.
StoreId = Annotated[int, Path(ge=1, le=2**63 - 1)]
RegisterId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# Any signed-in user may read their own store (the register screen needs its hours and policies); the service
# scopes a store-bound user to their store.
Reader = Annotated[Principal, Depends(require(Permission.SELF))]
StoreAdmin = Annotated[Principal, Depends(require(Permission.STORES_MANAGE))]
SettingsAdmin = Annotated[Principal, Depends(require(Permission.SETTINGS_MANAGE))]


@router.get("/stores", response_model=list[StoreOut])
async def list_stores(session: DbSession, principal: Reader) -> list[StoreOut]:
    return [service.store_out(s) for s in await service.list_stores(session, scope=principal.store_id)]


@router.get("/stores/{store_id}", response_model=StoreOut)
async def get_store(store_id: StoreId, session: DbSession, principal: Reader) -> StoreOut:
    return service.store_out(await service.get_store(session, store_id, scope=principal.store_id))


@router.patch("/stores/{store_id}", response_model=StoreOut)
async def update_store(
    store_id: StoreId, body: StoreUpdate, request: Request, session: DbSession, auth: Auth, principal: StoreAdmin
) -> StoreOut:
    store = await service.update_store(session, auth.crypto, actor(request, principal), store_id, body)
    return service.store_out(store)


@router.get("/stores/{store_id}/settings", response_model=StoreSettingsOut)
async def get_settings(store_id: StoreId, session: DbSession, principal: Reader) -> StoreSettingsOut:
    document = await service.get_settings(session, store_id, scope=principal.store_id)
    return StoreSettingsOut(store_id=store_id, settings=document)


@router.put("/stores/{store_id}/settings", response_model=StoreSettingsOut)
async def replace_settings(
    store_id: StoreId,
    body: Annotated[dict[str, Any], Body()],
    request: Request,
    session: DbSession,
    auth: Auth,
    principal: SettingsAdmin,
) -> StoreSettingsOut:
    document = await service.replace_settings(session, auth.crypto, actor(request, principal), store_id, body)
    return StoreSettingsOut(store_id=store_id, settings=document)


@router.get("/stores/{store_id}/registers", response_model=list[RegisterOut])
async def list_registers(store_id: StoreId, session: DbSession, principal: Reader) -> list[RegisterOut]:
    registers = await service.list_registers(session, store_id, scope=principal.store_id)
    return [service.register_out(r) for r in registers]


@router.post("/stores/{store_id}/registers", response_model=RegisterOut, status_code=201)
async def create_register(
    store_id: StoreId, body: RegisterCreate, request: Request, session: DbSession, auth: Auth, principal: StoreAdmin
) -> RegisterOut:
    register = await service.create_register(session, auth.crypto, actor(request, principal), store_id, body)
    return service.register_out(register)


@router.patch("/registers/{register_id}", response_model=RegisterOut)
async def update_register(
    register_id: RegisterId,
    body: RegisterUpdate,
    request: Request,
    session: DbSession,
    auth: Auth,
    principal: StoreAdmin,
) -> RegisterOut:
    register = await service.update_register(session, auth.crypto, actor(request, principal), register_id, body)
    return service.register_out(register)
