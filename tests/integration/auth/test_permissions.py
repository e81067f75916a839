"""Every route has a permission rule, and every role gets exactly what the matrix gives it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from posomni.auth.permissions import PUBLIC_ROUTES, ROLE_PERMISSIONS, Permission
from posomni.users.models import Role
from tests.support import sign_in


def _permission_of(dependant: Any) -> Permission | None:
    for dependency in dependant.dependencies:
        found = getattr(dependency.call, "__posomni_permission__", None)
        if found is not None:
            return Permission(found)
        nested = _permission_of(dependency)
        if nested is not None:
            return nested
    return None


def api_routes(app: FastAPI) -> list[tuple[str, str, Permission | None]]:
    """Every (method, full path, permission) of the app, included routers flattened."""
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        for method in sorted(context.methods or ()):
            routes.append((method, context.path, _permission_of(route.dependant)))
    return routes


async def test_every_route_declares_a_permission_or_is_public(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, _ = app_client
    missing = [
        f"{method} {path}"
        for method, path, permission in api_routes(app)
        if permission is None and (method, path) not in PUBLIC_ROUTES
    ]
    assert missing == [], f"routes without a permission rule: {missing}"


async def test_public_routes_exist(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, _ = app_client
    declared = {(m, p) for m, p, _ in api_routes(app)}
    # Routes of later features may be listed before they exist; the ones that exist must be real routes.
    assert {("GET", "/health"), ("POST", "/auth/login"), ("POST", "/auth/pin")} <= declared


def _fill(path: str) -> str:
    # An id that does not exist: allowed roles get 404 or 422, and nothing real is changed by the walk.
    return re.sub(r"\{[^}]+\}", "999999", path)


@pytest.mark.parametrize("role", [r.value for r in Role])
async def test_role_matrix_for_every_route(app_client: tuple[FastAPI, httpx.AsyncClient], role: str) -> None:
    app, http = app_client
    headers = await sign_in(http, role)
    allowed = ROLE_PERMISSIONS[Role(role)]
    checked = 0
    for method, path, permission in api_routes(app):
        if permission is None or (method, path) == ("POST", "/auth/logout"):
            continue
        response = await http.request(method, _fill(path), headers=headers, json={})
        if permission in allowed:
            assert response.status_code not in (401, 403), f"{role} refused {method} {path}: {response.text}"
        else:
            assert response.status_code == 403, f"{role} reached {method} {path}: {response.status_code}"
            assert response.json()["error"]["code"] == "permission_denied"
        checked += 1
    assert checked > 0


async def test_every_route_needs_a_signed_in_user(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, http = app_client
    for method, path, permission in api_routes(app):
        if permission is None:
            continue
        response = await http.request(method, _fill(path), json={})
        assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a token"
