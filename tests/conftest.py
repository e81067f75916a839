"""Shared fixtures: real PostgreSQL and Redis, migrated databases, settings and the app.

Each data-touching test gets its own database: on PostgreSQL a clone of a template migrated once per run
(`CREATE DATABASE … TEMPLATE`, about 0.1 s), on SQLite a copy of a migrated file. Tests therefore commit for
real, as the app does, and never see each other's rows.

Under CI=true a missing PostgreSQL or Redis fails the tests that need it; elsewhere they are skipped with a
message saying how to start the service.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from posomni import migrate
from posomni.app import create_app
from posomni.config import Settings, check, from_mapping
from posomni.database import Database, create_engine
from posomni.security.crypto import generate_key

PG_ADMIN_URL = os.environ.get("POSOMNI_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("POSOMNI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"


def service_missing(name: str, error: BaseException) -> None:
    message = f"{name} is not reachable ({type(error).__name__}: {error}); start it with scripts/services.sh"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def _db_url(database: str) -> str:
    return make_url(_async_url(PG_ADMIN_URL)).set(database=database).render_as_string(hide_password=False)


async def _admin_execute(*statements: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


# --- PostgreSQL -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def pg_template() -> AsyncIterator[str]:
    """A database migrated to head once per run; the template every PostgreSQL test database is cloned from."""
    name = f"posomni_t_{RUN_ID}_tmpl"
    try:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_missing("PostgreSQL", exc)
    engine = create_engine(_db_url(name))
    await migrate.upgrade(engine)
    await engine.dispose()
    yield name
    await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_url(pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this test (async URL)."""
    name = f"posomni_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _db_url(name)
    await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_empty_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database (no migrations applied)."""
    name = f"posomni_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    try:
        await _admin_execute(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_missing("PostgreSQL", exc)
    yield _db_url(name)
    await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- SQLite -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    await engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "posomni.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


# --- both backends ----------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database, once on SQLite (the embedded default) and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url, pool_size=5)
    yield db
    await db.dispose()


# --- Redis ------------------------------------------------------------------------------------------------


async def connect_redis(*, decode_responses: bool = False) -> aioredis.Redis:
    """A client of the tests' Redis, answering: a missing Redis fails the test under CI, skips it otherwise."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=2, decode_responses=decode_responses)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        await client.aclose()
        service_missing("Redis", exc)
    return client


def redis_env(client: aioredis.Redis, namespace: str) -> dict[str, str]:
    """The app's settings for the Redis `client` talks to, its keys under `namespace`."""
    where = client.connection_pool.connection_kwargs
    return {
        "REDIS_HOST": str(where.get("host", "127.0.0.1")), "REDIS_PORT": str(where.get("port", 6379)),
        "REDIS_DB": str(where.get("db", 0)), "REDIS_NAMESPACE": namespace,
    }  # fmt: skip


async def drop_namespace(client: aioredis.Redis, namespace: str) -> None:
    keys = [key async for key in client.scan_iter(f"{namespace}:*")]
    if keys:
        await client.delete(*keys)


async def command_calls(client: aioredis.Redis, command: str) -> int:
    """How many times the Redis server has run `command` (lower case; a Lua script's EVALSHA counts once, the
    commands inside it separately) since it started: compare two readings."""
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = await connect_redis(decode_responses=True)
    yield client
    await client.aclose()


# --- settings and app -------------------------------------------------------------------------------------


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        "POS_ENV": "test",
        "AUDIT_LOG_ENCRYPTION_KEY": generate_key(),
        "JWT_SECRET": "test-secret-" + "x" * 40,
        "ALLOWED_ORIGINS": "http://127.0.0.1:8000,http://testserver",
        # bcrypt at cost 4 keeps sign-in tests fast; production refuses anything below 12.
        "PASSWORD_HASH_COST": "4",
    }
    env.update(overrides)
    return env


def make_settings(**overrides: str) -> Settings:
    settings, problems = check(from_mapping(base_env(**overrides)))
    assert settings is not None, problems
    return settings


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(DATABASE_URL=db_url, POSOMNI_DATA_DIR=str(tmp_path))


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Mark tests by the services they use, so `-m "not postgres"` works on a laptop without PostgreSQL.
    for item in items:
        names: Any = getattr(item, "fixturenames", ())
        if "pg_url" in names or "pg_template" in names or "pg_empty_url" in names:
            item.add_marker(pytest.mark.postgres)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if "redis_client" in names:
            item.add_marker(pytest.mark.redis)


@pytest.fixture
def chdir_tmp(tmp_path: Path) -> Iterator[Path]:
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)
