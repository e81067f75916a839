from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from posomni.auth import service
from posomni.auth.dependencies import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Auth,
    client_address,
    request_id_of,
    require,
)
from posomni.auth.permissions import ROLE_PERMISSIONS, Permission
from posomni.auth.principal import Principal
from posomni.auth.schemas import LoginRequest, MeOut, PinLoginRequest, SessionOut
from posomni.config import Environment, Settings
from posomni.dependencies import AppSettings, DbSession
from posomni.users.models import Role, User

router = APIRouter(prefix="/auth", tags=["auth"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong credentials"},
    423: {"description": "PIN locked"},
    429: {"description": "Too many attempts (Retry-After)"},
}


def _me(user: User, register_id: int | None) -> MeOut:
    return MeOut(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        store_id=user.store_id,
        register_id=register_id,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[Role(user.role)]),
    )


def _secure_cookies(settings: Settings) -> bool:
    """Secure in test and production. Not in development, where a register on the shop's network may open the
    service over plain http, and a browser keeps a Secure cookie only from https (or loopback)."""
    return settings.env is not Environment.DEVELOPMENT


def _session_out(signed: service.SignedIn, response: Response, secure: bool) -> SessionOut:
    claims = signed.issued.claims
    max_age = int((claims.expires_at - claims.issued_at).total_seconds())
    response.set_cookie(
        SESSION_COOKIE, signed.issued.token, max_age=max_age, httponly=True, secure=secure, samesite="strict"
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(
        CSRF_COOKIE, signed.csrf_token, max_age=max_age, httponly=False, secure=secure, samesite="strict"
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        access_token=signed.issued.token,
        expires_at=claims.expires_at,
        csrf_token=signed.csrf_token,
        user=_me(signed.user, claims.register_id),
    )


@router.post("/login", response_model=SessionOut, responses=_ERRORS)
async def login(
    body: LoginRequest, request: Request, response: Response, session: DbSession, auth: Auth, settings: AppSettings
) -> SessionOut:
    signed = await service.login(
        session,
        auth,
        username=body.username,
        password=body.password,
        register_id=body.register_id,
        client_address=client_address(request),
        request_id=request_id_of(request),
    )
    return _session_out(signed, response, _secure_cookies(settings))


@router.post("/pin", response_model=SessionOut, responses=_ERRORS)
async def pin_login(
    body: PinLoginRequest,
    request: Request,
    response: Response,
    session: DbSession,
    auth: Auth,
    settings: AppSettings,
) -> SessionOut:
    signed = await service.pin_login(
        session,
        auth,
        username=body.username,
        pin=body.pin,
        register_id=body.register_id,
        client_address=client_address(request),
        request_id=request_id_of(request),
    )
    return _session_out(signed, response, _secure_cookies(settings))


@router.post("/logout", status_code=204)
async def logout(
    request: Request,
    session: DbSession,
    auth: Auth,
    settings: AppSettings,
    principal: Annotated[Principal, Depends(require(Permission.SELF))],
) -> Response:
    await service.logout(session, auth, principal, request_id_of(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, secure=_secure_cookies(settings), samesite="strict", httponly=True)
    response.delete_cookie(CSRF_COOKIE, secure=_secure_cookies(settings), samesite="strict")
    return response


@router.get("/me", response_model=MeOut)
async def me(session: DbSession, principal: Annotated[Principal, Depends(require(Permission.SELF))]) -> MeOut:
    user = await session.get(User, principal.user_id)
    assert user is not None  # the principal was just loaded from this row
    return _me(user, principal.register_id)
