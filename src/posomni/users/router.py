from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from posomni.auth.dependencies import Auth, actor, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.dependencies import DbSession
from posomni.users import service
from posomni.users.schemas import PasswordReset, PinChange, UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, Depends(require(Permission.USERS_MANAGE))]


@router.get("", response_model=list[UserOut])
async def list_users(
    session: DbSession, principal: Admin, store_id: Annotated[int | None, Query(ge=1)] = None
) -> list[UserOut]:
    return [service.out(u) for u in await service.list_users(session, store_id=store_id)]


@router.post("", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, request: Request, session: DbSession, auth: Auth, principal: Admin) -> UserOut:
    user = await service.create(session, auth.crypto, actor(request, principal), body, service.Hashing(auth.hash_cost))
    return service.out(user)


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: int, session: DbSession, principal: Admin) -> UserOut:
    return service.out(await service.get(session, user_id))


@router.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user_id: int, body: UserUpdate, request: Request, session: DbSession, auth: Auth, principal: Admin
) -> UserOut:
    return service.out(await service.update(session, auth.crypto, actor(request, principal), user_id, body))


@router.post("/{user_id}/disable", response_model=UserOut)
async def disable_user(user_id: int, request: Request, session: DbSession, auth: Auth, principal: Admin) -> UserOut:
    return service.out(await service.set_active(session, auth.crypto, actor(request, principal), user_id, False))


@router.post("/{user_id}/enable", response_model=UserOut)
async def enable_user(user_id: int, request: Request, session: DbSession, auth: Auth, principal: Admin) -> UserOut:
    return service.out(await service.set_active(session, auth.crypto, actor(request, principal), user_id, True))


@router.post("/{user_id}/revoke-sessions", response_model=UserOut)
async def revoke_sessions(user_id: int, request: Request, session: DbSession, auth: Auth, principal: Admin) -> UserOut:
    return service.out(await service.end_sessions(session, auth.crypto, actor(request, principal), user_id))


@router.post("/{user_id}/password", response_model=UserOut)
async def reset_password(
    user_id: int, body: PasswordReset, request: Request, session: DbSession, auth: Auth, principal: Admin
) -> UserOut:
    user = await service.reset_password(
        session, auth.crypto, actor(request, principal), user_id, body.password, service.Hashing(auth.hash_cost)
    )
    return service.out(user)


@router.post("/{user_id}/pin", response_model=UserOut)
async def set_pin(
    user_id: int, body: PinChange, request: Request, session: DbSession, auth: Auth, principal: Admin
) -> UserOut:
    user = await service.set_pin(
        session, auth.crypto, actor(request, principal), user_id, body.pin, service.Hashing(auth.hash_cost)
    )
    return service.out(user)
