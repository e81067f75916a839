"""Engines and sessions. The request dependency here, the CLI's `unit_of_work` and the background workers are
the only places that commit: services work on the session they are given and never commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from starlette.requests import Request

from posomni.kit.errors import PosError

# How long SQLite waits for another writer before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (SAVEPOINT needs it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run while one register writes; the busy timeout makes writers queue, not fail.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock at BEGIN: a deferred transaction that later upgrades to a writer can
        # fail at once with "database is locked" instead of waiting for the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """What `pool_pre_ping` does, in one round trip instead of three.

    A pooled connection may have died since it was last used (PostgreSQL restarted, a failover, an idle
    timeout): before a session gets it, it runs `SELECT 1`. If that fails, every connection in the pool is as
    old as the failure, so the whole pool is thrown away and SQLAlchemy checks out a new connection (see
    `DisconnectionError` in the pool's checkout); only when that one cannot connect either does the request
    fail (503 `service_unavailable`). SQLAlchemy's own pre-ping prepares its statement and so wraps it in
    BEGIN … ROLLBACK, for PgBouncer's transaction pooling: three round trips on every checkout. `SELECT 1` sent
    as a simple query (no parameters: asyncpg prepares nothing) is one round trip and just as safe behind
    PgBouncer. A request checks out a connection once or twice, a card checkout eight times. A connection
    opened for this checkout is not pinged."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["fresh"] = True  # the record's info lasts as long as this DBAPI connection

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.pop("fresh", False):
            return
        try:
            dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
        except Exception as exc:
            raise InvalidatePoolError(f"pooled connection failed its ping: {exc!r}") from exc


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _prepare_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        # A dead database must fail a request quickly rather than hang the register.
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": {"application_name": "posomni"},
        },
    )
    _ping_on_checkout(engine)
    return engine


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, echo=echo)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def kind(self) -> Literal["postgresql", "sqlite"]:
        return "sqlite" if self.engine.dialect.name == "sqlite" else "postgresql"

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for a few reads outside any transaction (who is calling, on every request). On PostgreSQL
        each statement runs on its own (autocommit): no BEGIN and ROLLBACK round trips around them, and no
        snapshot shared between them. Never write through it: a write would be kept at once. On SQLite a plain
        session (its transactions begin IMMEDIATE, see `_prepare_sqlite`, which autocommit would skip)."""
        if self.kind == "sqlite":
            async with self.sessionmaker() as session:
                yield session
            return
        async with self.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with self.sessionmaker(bind=connection) as session:
                yield session

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: commits when the block ends normally, rolls back on any exception (except a refusal
        that keeps its records, see `PosError.keeps_records`)."""
        async with self.sessionmaker() as session:
            try:
                yield session
            except PosError as exc:
                if exc.keeps_records:
                    await session.commit()
                else:
                    await session.rollback()
                raise
            except BaseException:
                await session.rollback()
                raise
            await session.commit()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction. Use with `Depends(get_session, scope="function")` (see `dependencies`) so the
    commit happens before the response is sent: a client never sees success for work that was not saved."""
    database: Database = request.app.state.database
    async with database.unit_of_work() as session:
        yield session
