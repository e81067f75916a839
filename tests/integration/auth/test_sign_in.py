"""Sign-in, sign-out, token expiry and revocation, PIN switching and lock-out, CSRF, CORS, headers."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from posomni.audit.models import AuditEntry
from posomni.auth.service import PIN_ATTEMPTS_BEFORE_LOCK
from posomni.database import Database
from posomni.kit.time import utcnow
from posomni.users.models import User
from tests.support import PASSWORDS, PINS, sign_in


async def test_sign_in_returns_a_token_and_secure_cookies(http: httpx.AsyncClient) -> None:
    response = await http.post("/auth/login", json={"username": "cashier", "password": PASSWORDS["cashier"]})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["role"] == "cashier"
    assert "sell" in body["user"]["permissions"]
    assert body["token_type"] == "bearer"
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("posomni_session="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=strict" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith("posomni_csrf="))
    assert "HttpOnly" not in csrf_cookie
    assert response.headers["cache-control"] == "no-store"
    me = await http.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "cashier"


async def test_wrong_password_and_unknown_user_get_the_same_error(http: httpx.AsyncClient, database: Database) -> None:
    wrong = await http.post("/auth/login", json={"username": "cashier", "password": "not-the-password"})
    unknown = await http.post("/auth/login", json={"username": "nobody", "password": "not-the-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    # Both failures are recorded, even though the requests failed.
    async with database.sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.action == "auth.login_failed")))
    assert len(actions) == 2


async def test_disabled_user_cannot_sign_in_and_loses_open_sessions(http: httpx.AsyncClient) -> None:
    admin = await sign_in(http, "admin")
    cashier = await sign_in(http, "cashier")
    users = (await http.get("/users", headers=admin)).json()
    cashier_id = next(u["id"] for u in users if u["username"] == "cashier")
    assert (await http.post(f"/users/{cashier_id}/disable", headers=admin)).status_code == 200
    me = await http.get("/auth/me", headers=cashier)
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "session_ended"
    again = await http.post("/auth/login", json={"username": "cashier", "password": PASSWORDS["cashier"]})
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_credentials"


async def test_expired_token_is_refused(app_client: tuple[FastAPI, httpx.AsyncClient], database: Database) -> None:
    app, http = app_client
    async with database.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.username == "cashier"))
    assert user is not None
    old = app.state.auth.codec.issue(
        user_id=user.id, role=user.role, store_id=user.store_id, now=utcnow() - timedelta(hours=8, minutes=1)
    )
    response = await http.get("/auth/me", headers={"Authorization": f"Bearer {old.token}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


async def test_tampered_and_missing_tokens_are_refused(http: httpx.AsyncClient) -> None:
    headers = await sign_in(http, "cashier")
    tampered = headers["Authorization"][:-3] + ("abc" if not headers["Authorization"].endswith("abc") else "xyz")
    assert (await http.get("/auth/me", headers={"Authorization": tampered})).status_code == 401
    missing = await http.get("/auth/me")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "not_authenticated"


async def test_logout_revokes_the_token_immediately(http: httpx.AsyncClient) -> None:
    headers = await sign_in(http, "cashier")
    other_session = await sign_in(http, "cashier")
    assert (await http.post("/auth/logout", headers=headers)).status_code == 204
    response = await http.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"
    # Only that session ended.
    assert (await http.get("/auth/me", headers=other_session)).status_code == 200


async def test_pin_switching_and_lock_out(http: httpx.AsyncClient, database: Database) -> None:
    ok = await http.post("/auth/pin", json={"username": "cashier", "pin": PINS["cashier"], "register_id": 1})
    assert ok.status_code == 200
    assert ok.json()["user"]["register_id"] == 1
    for attempt in range(1, PIN_ATTEMPTS_BEFORE_LOCK + 1):
        wrong = await http.post("/auth/pin", json={"username": "cashier", "pin": "9182"})
        expected = 423 if attempt == PIN_ATTEMPTS_BEFORE_LOCK else 401
        assert wrong.status_code == expected, (attempt, wrong.text)
    # The attempt that locks the PIN already says how long the lock lasts (15 minutes at first).
    assert 15 * 60 <= int(wrong.headers["retry-after"]) <= 15 * 60 + 1
    # Locked: even the right PIN is refused now, and the lock is recorded.
    locked = await http.post("/auth/pin", json={"username": "cashier", "pin": PINS["cashier"]})
    assert locked.status_code == 423
    assert int(locked.headers["retry-after"]) > 0
    async with database.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.username == "cashier"))
        actions = set(await session.scalars(select(AuditEntry.action)))
    assert user is not None
    assert user.pin_locked_until is not None
    assert {"auth.pin_failed", "auth.pin_locked"} <= actions
    # The password still works.
    await sign_in(http, "cashier")


async def test_pin_at_a_register_of_another_store_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/auth/pin", json={"username": "cashier", "pin": PINS["cashier"], "register_id": 999})
    assert response.status_code == 422


async def test_login_rate_limit_reaches_429_and_recovers(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, http = app_client
    # Short windows so the test can see the recovery.
    app.state.auth = dataclasses.replace(app.state.auth, account_limits=("3/2second",), address_limits=("50/minute",))
    for _ in range(3):
        assert (
            await http.post("/auth/login", json={"username": "manager", "password": "wrong-password!"})
        ).status_code == 401
    limited = await http.post("/auth/login", json={"username": "manager", "password": PASSWORDS["manager"]})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "too_many_attempts"
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    import asyncio

    await asyncio.sleep(2.2)
    assert (
        await http.post("/auth/login", json={"username": "manager", "password": PASSWORDS["manager"]})
    ).status_code == 200


class TestCsrf:
    async def test_cookie_session_needs_the_csrf_header_to_change_state(self, http: httpx.AsyncClient) -> None:
        response = await http.post("/auth/login", json={"username": "cashier", "password": PASSWORDS["cashier"]})
        csrf = response.json()["csrf_token"]
        # The client now holds the session and CSRF cookies, as a browser would.
        assert (await http.get("/auth/me")).status_code == 200  # reading needs no CSRF token
        refused = await http.post("/auth/logout")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
        wrong = await http.post("/auth/logout", headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        accepted = await http.post("/auth/logout", headers={"X-CSRF-Token": csrf})
        assert accepted.status_code == 204

    async def test_bearer_requests_need_no_csrf_token(self, http: httpx.AsyncClient) -> None:
        headers = await sign_in(http, "cashier")
        http.cookies.clear()
        assert (await http.post("/auth/logout", headers=headers)).status_code == 204


class TestCorsAndHeaders:
    async def test_allowed_origin_gets_cors_headers(self, http: httpx.AsyncClient) -> None:
        response = await http.options(
            "/auth/login",
            headers={"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"},
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"

    async def test_other_origin_is_refused(self, http: httpx.AsyncClient) -> None:
        response = await http.options(
            "/auth/login", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
        )
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        simple = await http.get("/health", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in simple.headers

    async def test_security_headers_on_every_response(self, http: httpx.AsyncClient) -> None:
        for response in (await http.get("/health"), await http.get("/nope"), await http.get("/auth/me")):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            # The test environment is not development, so HSTS is on.
            assert "max-age=" in response.headers["strict-transport-security"]
