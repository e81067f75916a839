from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
from fastapi import FastAPI

from posomni.compliance.dependencies import decision_time
from posomni.config import Settings
from posomni.database import Database
from tests.integration.compliance.support import Clock, local
from tests.support import running_app, seed_demo, sign_in


@pytest.fixture
def clock() -> Clock:
    # Noon in the demo store (America/New_York) on an ordinary day; tests move it as they need.
    return Clock(local(date(2026, 6, 15)))


@pytest.fixture
async def app_client(
    settings: Settings, database: Database, clock: Clock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    await seed_demo(database)
    async with running_app(settings, database) as (app, http):
        app.dependency_overrides[decision_time] = lambda: clock.now
        yield app, http


@pytest.fixture
def http(app_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


@pytest.fixture
async def cashier(http: httpx.AsyncClient) -> dict[str, str]:
    return await sign_in(http, "cashier")
