"""The one place where exceptions become HTTP responses: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from posomni.kit.errors import PosError
from posomni.logging import get_logger

log = get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# SQLSTATEs of a value the client sent that the database cannot hold: a NUL or untranslatable character in a
# text, a number beyond its column's range, or a parameter the driver refuses (an id beyond 64 bits). Found by
# the API fuzzer (tests/fuzz); they are the client's error, not the server's.
_UNSTORABLE_VALUE = frozenset({"22000", "22003", "22021", "22P05"})


# SQLSTATEs of a database that is going away or not yet there: the server shutting down (admin or crash), not
# accepting connections yet (starting, in recovery), and the whole connection-exception class 08. A request that
# meets one may succeed moments later, like one that finds the database down (seen in the fault drill while
# PostgreSQL restarted).
_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03"})


def _database_unavailable(sqlstate: object) -> bool:
    return isinstance(sqlstate, str) and (sqlstate in _UNAVAILABLE or sqlstate.startswith("08"))


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    fields = []
    for error in exc.errors():
        # Never echo the submitted value back: it may be a card number or a password.
        fields.append({"location": [str(p) for p in error.get("loc", ())], "message": error.get("msg", "")})
    return {"fields": fields}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PosError)
    async def pos_error(request: Request, exc: PosError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = error_body("validation_error", "Some fields are not valid.", _validation_details(exc))
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(StaleDataError)
    async def stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return JSONResponse(
            error_body("concurrent_update", "Someone else changed this at the same time; reload and retry."),
            status_code=409,
        )

    @app.exception_handler(IntegrityError)
    async def integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity_error", error=str(exc.orig)[:300], request_id=_request_id(request))
        return JSONResponse(error_body("conflict", "The change conflicts with existing data."), status_code=409)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database_unavailable", error=type(exc.orig).__name__, request_id=_request_id(request))
        return JSONResponse(
            error_body("service_unavailable", "The database is unavailable; try again shortly."),
            status_code=503,
        )

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if (
            exc.connection_invalidated
            or isinstance(exc.orig, (ConnectionError, OSError))
            or _database_unavailable(sqlstate)
        ):
            log.error(
                "database_unavailable", error=type(exc.orig).__name__, sqlstate=sqlstate,
                request_id=_request_id(request),
            )  # fmt: skip
            return JSONResponse(
                error_body("service_unavailable", "The database is unavailable; try again shortly."),
                status_code=503,
            )
        if sqlstate in _UNSTORABLE_VALUE:
            log.warning("unstorable_value", sqlstate=sqlstate, request_id=_request_id(request))
            return JSONResponse(
                error_body("invalid_value", "A value is out of range or has characters that cannot be stored."),
                status_code=422,
            )
        return await unexpected(request, exc)

    @app.exception_handler(ConnectionError)
    async def dependency_unreachable(request: Request, exc: ConnectionError) -> JSONResponse:
        # A refused connection surfaces as the socket error itself, not wrapped by the driver.
        log.error("dependency_unreachable", error=type(exc).__name__, request_id=_request_id(request))
        return JSONResponse(
            error_body("service_unavailable", "A service the request needs is unreachable; try again shortly."),
            status_code=503,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = _request_id(request)
        log.exception("unhandled_error", request_id=request_id, path=request.url.path)
        return JSONResponse(
            error_body(
                "internal_error",
                "Something went wrong on the server; it has been logged.",
                {"request_id": request_id} if request_id else None,
            ),
            status_code=500,
        )
