from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from posomni.config import Settings
from posomni.database import Database
from tests.support import running_app, seed_demo


@pytest.fixture
async def app_client(settings: Settings, database: Database) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    await seed_demo(database)
    async with running_app(settings, database) as pair:
        yield pair


@pytest.fixture
def http(app_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]
