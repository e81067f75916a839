"""Values PostgreSQL cannot hold are the client's error (422 `invalid_value`), never a 500: requests the API
fuzzer (tests/fuzz) found, kept as regressions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from posomni.database import Database
from tests.conftest import make_settings
from tests.support import running_app, seed_demo, sign_in


@pytest.fixture
async def pg_http(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(pg_url, pool_size=2)
    settings = make_settings(DATABASE_URL=pg_url, POSOMNI_DATA_DIR=str(tmp_path))
    try:
        await seed_demo(database)
        async with running_app(settings, database) as (_, http):
            yield http
    finally:
        await database.dispose()


async def test_a_nul_character_in_a_username_is_refused_as_invalid(pg_http: httpx.AsyncClient) -> None:
    response = await pg_http.post("/auth/login", json={"username": "ca\x00shier", "password": "whatever-it-is"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_value"


async def test_an_id_beyond_64_bits_is_refused_as_invalid(pg_http: httpx.AsyncClient) -> None:
    cashier = await sign_in(pg_http, "cashier", register_id=1)
    response = await pg_http.get(f"/sales/{2**70}", headers=cashier)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_value"
