"""Helpers shared by tests: seeding the demo store, signing in, building apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from posomni.app import create_app
from posomni.config import Settings
from posomni.database import Database
from posomni.seed.demo import DEMO_LOGINS, seed
from posomni.stores.models import Store

PASSWORDS = {login.username: login.password for login in DEMO_LOGINS}
PINS = {login.username: login.pin for login in DEMO_LOGINS if login.pin}


async def seed_demo(database: Database) -> None:
    async with database.unit_of_work() as session:
        await seed(session, demo=True, bcrypt_cost=4)


ALL_DAY = {"default": [{"opens": "00:00", "closes": "24:00"}]}


async def sell_around_the_clock(database: Database, store_code: str = "FL-001") -> None:
    """Tests run at any hour: the store sells alcohol around the clock. The hours rule has tests of its own, which
    keep the demo store's Florida hours (no sales 00:00-07:00) and set the clock they test."""
    async with database.unit_of_work() as session:
        store = await session.scalar(select(Store).where(Store.code == store_code))
        assert store is not None
        store.settings = {**(store.settings or {}), "sale_hours": ALL_DAY}


@asynccontextmanager
async def running_app(settings: Settings, database: Database) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, database=database)
    # https, as behind the TLS proxy: outside development the session cookies are Secure, and a client sends
    # those over https only.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http,
    ):
        yield app, http


async def sign_in(http: httpx.AsyncClient, username: str, **extra: Any) -> dict[str, str]:
    response = await http.post("/auth/login", json={"username": username, "password": PASSWORDS[username], **extra})
    assert response.status_code == 200, response.text
    # API clients use the bearer token; drop the browser cookies so tests do not authenticate by accident.
    http.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
