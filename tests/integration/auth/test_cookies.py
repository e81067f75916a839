"""The browser session's cookies: HttpOnly (the session), SameSite=Strict, and Secure in every environment but
development."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from posomni.config import Settings
from posomni.database import Database
from tests.conftest import make_settings
from tests.support import PASSWORDS, PINS, running_app, seed_demo

ENVIRONMENTS = {
    "development": {},
    "test": {},
    "production": {
        "JWT_SECRET": "Zq8-vX2k#Lm4Pr7tWy9aBc1dEf3gHj5K",
        "ALLOWED_ORIGINS": "https://pos.example.com",
        "PASSWORD_HASH_COST": "12",
    },
}


@pytest.fixture
async def pg_database(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url, pool_size=2)
    await seed_demo(database)
    yield database
    await database.dispose()


def settings_for(env: str, database: Database, tmp_path: Path) -> Settings:
    # Production needs PostgreSQL, so every environment runs on it.
    return make_settings(POS_ENV=env, DATABASE_URL=database.url, POSOMNI_DATA_DIR=str(tmp_path), **ENVIRONMENTS[env])


def attributes(response: httpx.Response, name: str) -> dict[str, str]:
    header = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}="))
    pairs = (part.strip().partition("=") for part in header.split(";")[1:])
    return {key.lower(): value for key, _, value in pairs}


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
async def test_set_cookie_attributes(env: str, pg_database: Database, tmp_path: Path) -> None:
    secure = env != "development"
    async with running_app(settings_for(env, pg_database, tmp_path), pg_database) as (_, http):
        login = await http.post("/auth/login", json={"username": "cashier", "password": PASSWORDS["cashier"]})
        pin = await http.post("/auth/pin", json={"username": "cashier", "pin": PINS["cashier"]})
        for response in (login, pin):
            assert response.status_code == 200, response.text
            session = attributes(response, "posomni_session")
            csrf = attributes(response, "posomni_csrf")
            assert ("secure" in session, "secure" in csrf) == (secure, secure)
            assert "httponly" in session
            assert "httponly" not in csrf  # the page's script echoes it in X-CSRF-Token
            assert session["samesite"] == csrf["samesite"] == "strict"
            assert session["path"] == csrf["path"] == "/"
            assert session["max-age"] == csrf["max-age"] == str(8 * 3600)
        token = pin.json()["access_token"]
        http.cookies.clear()
        logout = await http.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
        assert logout.status_code == 204
        # Deleting the cookies uses the same attributes, or a browser would keep the Secure ones.
        for name in ("posomni_session", "posomni_csrf"):
            deleted = attributes(logout, name)
            assert deleted["max-age"] == "0"
            assert ("secure" in deleted) == secure
            assert deleted["samesite"] == "strict"


@pytest.mark.parametrize(("env", "over_http"), [("development", 200), ("test", 401)])
async def test_a_client_sends_the_secure_session_cookie_over_https_only(
    env: str, over_http: int, pg_database: Database, tmp_path: Path
) -> None:
    async with running_app(settings_for(env, pg_database, tmp_path), pg_database) as (app, https):
        signed = await https.post("/auth/login", json={"username": "cashier", "password": PASSWORDS["cashier"]})
        assert signed.status_code == 200
        assert (await https.get("/auth/me")).status_code == 200  # the cookie alone signs in
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
            again = await plain.post("/auth/login", json={"username": "cashier", "password": PASSWORDS["cashier"]})
            assert again.status_code == 200
            assert (await plain.get("/auth/me")).status_code == over_http
