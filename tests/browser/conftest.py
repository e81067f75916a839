"""Browser tests: a real server on loopback with a fresh seeded SQLite database, driven through Debian's
Chromium by Playwright (never Playwright's own browser download). Under CI=true a missing Chromium fails."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import select, update

from posomni.database import Database
from posomni.seed.demo import DEFAULT_STORE_SETTINGS
from posomni.stores.models import Register, Store
from tests.browser.support import LiveServer, start_server
from tests.conftest import IN_CI, make_settings
from tests.support import seed_demo

# The reader paired with register 2 (the simulated processor's test reader).
READER_ID = "tmr_sim_r2"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "Chromium is not installed; install it with scripts/browser.sh (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
            headless=True,
        )
        yield launched
        await launched.close()


async def _prepare(url: str) -> None:
    database = Database(url, pool_size=2)
    try:
        await seed_demo(database)
        async with database.unit_of_work() as session:
            store = await session.scalar(select(Store))
            assert store is not None
            # Tests run at any hour: the store sells around the clock (the hours rule has its own tests).
            all_day = {"default": [{"opens": "00:00", "closes": "24:00"}]}
            store.settings = {**DEFAULT_STORE_SETTINGS, "sale_hours": all_day}
            await session.execute(update(Register).where(Register.code == "R2").values(card_reader_id=READER_ID))
    finally:
        await database.dispose()


@pytest.fixture
async def server(sqlite_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    await _prepare(sqlite_url)
    settings = make_settings(DATABASE_URL=sqlite_url, POSOMNI_DATA_DIR=str(tmp_path), CARD_PROCESSOR="simulated")
    live = start_server(settings)
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
async def context(browser: Browser, server: LiveServer) -> AsyncIterator[BrowserContext]:
    created = await browser.new_context(viewport={"width": 1024, "height": 768}, base_url=server.base_url)
    created.set_default_timeout(10_000)
    yield created
    await created.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A page at 1024×768 that fails the test on any script error or Content-Security-Policy violation."""
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"CSP: {message.text}")

    opened.on("console", console)
    yield opened
    assert problems == [], problems
