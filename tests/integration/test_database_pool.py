"""The PostgreSQL pool checks a pooled connection before handing it out (`database._ping_on_checkout`): a
connection PostgreSQL has dropped (a restart, a failover, `pg_terminate_backend`) is replaced, the next session
works, and a healthy connection is reused as it is rather than reopened."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from posomni.database import Database
from tests.conftest import _asyncpg_dsn


async def _backend_pid(database: Database) -> int:
    async with database.unit_of_work() as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


async def _terminate(url: str, *pids: int) -> None:
    admin = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        for pid in pids:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
    finally:
        await admin.close()


@pytest.fixture
async def pg_database(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url, pool_size=2)
    yield database
    await database.dispose()


async def test_a_healthy_pooled_connection_is_reused(pg_database: Database) -> None:
    first = await _backend_pid(pg_database)
    assert [await _backend_pid(pg_database) for _ in range(5)] == [first] * 5


async def test_a_connection_postgresql_dropped_is_replaced_before_the_session_uses_it(
    pg_url: str, pg_database: Database
) -> None:
    dropped = await _backend_pid(pg_database)
    await _terminate(pg_url, dropped)

    replacement = await _backend_pid(pg_database)  # no error: the ping found the dead connection first

    assert replacement != dropped
    assert await _backend_pid(pg_database) == replacement  # and the new one is pooled


async def test_after_a_restart_every_stale_connection_goes_at_once(pg_url: str, pg_database: Database) -> None:
    # Two connections in the pool, both killed (as a PostgreSQL restart does).
    async with pg_database.unit_of_work() as one, pg_database.unit_of_work() as two:
        pids = [await one.scalar(text("SELECT pg_backend_pid()")), await two.scalar(text("SELECT pg_backend_pid()"))]
    assert len(set(pids)) == 2
    await _terminate(pg_url, *pids)

    async with pg_database.unit_of_work() as one, pg_database.unit_of_work() as two:
        now = {await one.scalar(text("SELECT pg_backend_pid()")), await two.scalar(text("SELECT pg_backend_pid()"))}
    assert now.isdisjoint(pids)
