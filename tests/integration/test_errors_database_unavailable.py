"""A database that is shutting down, restarting or not accepting connections yet answers 503
`service_unavailable` (retry shortly), however the driver reports it — not a 500. Seen in the fault drill:
while PostgreSQL restarted, errors with SQLSTATE 57P01/57P03 arrived as a plain `DBAPIError`."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError

from posomni.errors import install_error_handlers


def _driver_error(error: asyncpg.PostgresError) -> DBAPIError:
    """What SQLAlchemy raises for an asyncpg error it has no more specific class for."""
    orig = AsyncAdapt_asyncpg_dbapi.Error(str(error), error)
    return DBAPIError.instance("SELECT 1", {}, orig, AsyncAdapt_asyncpg_dbapi.Error)


def _app(error: DBAPIError) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


async def _get(error: DBAPIError) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.get("/boom")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another process"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
        asyncpg.exceptions.ProtocolViolationError("protocol violation"),
    ],
    ids=lambda e: e.sqlstate,
)
async def test_a_database_going_away_is_a_503(error: asyncpg.PostgresError) -> None:
    wrapped = _driver_error(error)
    assert type(wrapped) is DBAPIError  # not an OperationalError: the other handler does not see it
    response = await _get(wrapped)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"


async def test_another_database_error_is_still_a_500() -> None:
    response = await _get(_driver_error(asyncpg.exceptions.InternalServerError("something else")))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
