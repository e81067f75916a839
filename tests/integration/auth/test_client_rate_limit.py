"""The global per-client request limit: 429 with Retry-After at the limit, health checks exempt, recovery after
the window, and off when RATE_LIMIT_ENABLED is false."""

from __future__ import annotations

import asyncio
from pathlib import Path

from posomni.database import Database
from tests.conftest import make_settings
from tests.support import running_app


async def test_client_limit_reaches_429_spares_health_and_recovers(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        DATABASE_URL=sqlite_url, POSOMNI_DATA_DIR=str(tmp_path), RATE_LIMIT_PER_CLIENT="5/4seconds"
    )
    database = Database(sqlite_url)
    try:
        async with running_app(settings, database) as (_, http):
            answers = [(await http.get("/auth/me")).status_code for _ in range(5)]
            assert answers == [401] * 5  # counted, whatever the answer
            limited = await http.get("/auth/me")
            assert limited.status_code == 429
            assert limited.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(limited.headers["retry-after"]) <= 4
            # Load balancers and monitors are never throttled into "down".
            assert (await http.get("/health")).status_code == 200
            await asyncio.sleep(4.2)
            assert (await http.get("/auth/me")).status_code == 401
    finally:
        await database.dispose()


async def test_client_limit_is_off_when_disabled(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        DATABASE_URL=sqlite_url,
        POSOMNI_DATA_DIR=str(tmp_path),
        RATE_LIMIT_PER_CLIENT="2/minute",
        RATE_LIMIT_ENABLED="false",
    )
    database = Database(sqlite_url)
    try:
        async with running_app(settings, database) as (_, http):
            assert [(await http.get("/auth/me")).status_code for _ in range(5)] == [401] * 5
    finally:
        await database.dispose()
