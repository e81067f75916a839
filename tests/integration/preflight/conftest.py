"""Fixtures for preflight and key-recovery tests (the same install as the backup tests)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from posomni.database import Database
from tests.conftest import make_settings
from tests.integration.backups.support import Install, install_env


@pytest.fixture
async def install(db_url: str, tmp_path: Path) -> AsyncIterator[Install]:
    env = install_env(db_url, tmp_path)
    database = Database(db_url, pool_size=2)
    yield Install(env, make_settings(**env), database, tmp_path / "no.env")
    await database.dispose()


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """The backup commands configure logging (process-wide); put it back as it was for the other tests."""
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    if was_configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()
