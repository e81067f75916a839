"""Helpers shared by tests: seeding the demo store, signing in, building apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from posomni.app import create_app
from posomni.config import Settings
from posomni.database import Database
from posomni.seed.demo import DEMO_LOGINS, seed

PASSWORDS = {login.username: login.password for login in DEMO_LOGINS}
PINS = {login.username: login.pin for login in DEMO_LOGINS if login.pin}


async def seed_demo(database: Database) -> None:
    async with database.unit_of_work() as session:
        await seed(session, demo=True, bcrypt_cost=4)


@asynccontextmanager
async def running_app(settings: Settings, database: Database) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, database=database)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield app, http


async def sign_in(http: httpx.AsyncClient, username: str, **extra: Any) -> dict[str, str]:
    response = await http.post("/auth/login", json={"username": username, "password": PASSWORDS[username], **extra})
    assert response.status_code == 200, response.text
    # API clients use the bearer token; drop the browser cookies so tests do not authenticate by accident.
    http.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
