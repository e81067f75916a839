"""PostgreSQL connections and sessions (`posomni.database`).

The pool checks a pooled connection before handing it out (`_ping_on_checkout`): a connection PostgreSQL has
dropped (a restart, a failover, `pg_terminate_backend`) is replaced, the next session works, and a healthy
connection is reused as it is rather than reopened. `Database.reader()` reads outside any transaction, and the
connection it used goes back to the pool as it was."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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


async def _two_clock_readings(session: AsyncSession) -> tuple[object, object]:
    first = await session.scalar(text("SELECT now()"))
    await asyncio.sleep(0.02)
    return first, await session.scalar(text("SELECT now()"))


async def test_the_reader_runs_each_statement_on_its_own(pg_database: Database) -> None:
    # now() is the start of the transaction: the same twice inside one, different without.
    async with pg_database.reader() as session:
        first, second = await _two_clock_readings(session)
    assert first != second


async def test_after_the_reader_the_connection_is_transactional_again(pg_database: Database) -> None:
    async with pg_database.reader() as session:
        reader_pid = await session.scalar(text("SELECT pg_backend_pid()"))
    async with pg_database.unit_of_work() as session:
        assert await session.scalar(text("SELECT pg_backend_pid()")) == reader_pid  # the same connection
        first, second = await _two_clock_readings(session)
        isolation = await session.scalar(text("SHOW transaction_isolation"))
    assert first == second
    assert isolation == "read committed"
