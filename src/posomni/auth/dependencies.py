"""Route dependencies: who is calling, and may they.

`require(permission)` is the one way a route declares its permission; the route test in
`tests/integration/auth/test_permissions.py` walks every route and fails on one without it (unless public).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from posomni.auth.permissions import Permission
from posomni.auth.principal import Actor, Principal
from posomni.auth.service import AuthAdapters, CsrfFailed, csrf_token_for, principal_for
from posomni.database import Database
from posomni.kit.errors import NotAuthenticated, PermissionDenied

SESSION_COOKIE = "posomni_session"
CSRF_COOKIE = "posomni_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_auth(request: Request) -> AuthAdapters:
    adapters: AuthAdapters = request.app.state.auth
    return adapters


Auth = Annotated[AuthAdapters, Depends(get_auth)]


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_principal(request: Request, auth: Auth) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        token, via = credentials.strip(), "bearer"
    elif request.cookies.get(SESSION_COOKIE):
        token, via = request.cookies[SESSION_COOKIE], "cookie"
    else:
        raise NotAuthenticated()
    # A short session of its own, not the request's transaction: routes that run several transactions of
    # their own (the checkout saga) must not find a transaction already open — on SQLite it would hold the
    # write lock for the whole request. Only reads: on PostgreSQL they need no transaction at all.
    database: Database = request.app.state.database
    async with database.reader() as session:
        principal, _ = await principal_for(session, auth, token, via)
    # Double-submit CSRF for browser sessions: a state change must echo the session's CSRF token in a header.
    # Bearer tokens are never sent automatically by a browser, so they need no CSRF token.
    if via == "cookie" and request.method not in SAFE_METHODS:
        expected = csrf_token_for(auth, principal.jti)
        sent = request.headers.get(CSRF_HEADER, "")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not (hmac.compare_digest(sent, expected) and hmac.compare_digest(cookie, expected)):
            raise CsrfFailed()
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise PermissionDenied(details={"required": permission.value, "role": principal.role})
        return principal

    # Read by the route-coverage test.
    dependency.__posomni_permission__ = permission  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{permission.value.replace('.', '_')}"
    return dependency


def actor(request: Request, principal: Principal) -> Actor:
    return Actor.of(principal, request_id_of(request))
