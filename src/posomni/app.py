"""The composition root: builds the app from settings, creating every adapter in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from posomni import __version__, bootstrap, migrate, worker
from posomni.audit.router import router as audit_router
from posomni.auth.middleware import ClientRateLimitMiddleware
from posomni.auth.router import router as auth_router
from posomni.backoffice.client import build_backoffice_client
from posomni.cache.service import CacheService
from posomni.catalog.router import router as catalog_router
from posomni.compliance.router import router as compliance_router
from posomni.config import DEFAULT_ENV_FILE, Environment, Settings, load_settings
from posomni.customers.router import router as customers_router
from posomni.database import Database
from posomni.errors import install_error_handlers
from posomni.health.router import router as health_router
from posomni.inventory.router import router as inventory_router
from posomni.kit.ids import is_valid_request_id, new_request_id
from posomni.logging import configure_logging, get_logger
from posomni.monitoring import setup as monitoring
from posomni.openapi import document_error_responses
from posomni.payments.gateway import PaymentGateway
from posomni.payments.router import router as payments_router
from posomni.sales.refund_saga import Refunds
from posomni.sales.router import router as sales_router
from posomni.sales.saga import Checkout
from posomni.security.crypto import EncryptionService
from posomni.security.headers import SecurityHeadersMiddleware
from posomni.security.pci import CardDataGuardMiddleware
from posomni.shifts.router import router as shifts_router
from posomni.stores.router import router as stores_router
from posomni.users.router import router as users_router
from posomni.web.router import api as web_api
from posomni.web.router import pages as web_pages

log = get_logger(__name__)


class RequestIdMiddleware:
    """Gives every request an id (kept from the client when well-formed) and returns it in X-Request-ID."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if is_valid_request_id(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _recover_interrupted(database: Database, crypto: EncryptionService, gateway: PaymentGateway | None) -> None:
    """Sales and refunds left half-done by a stopped process: finished or compensated at start-up."""
    try:
        state = await migrate.status(database.engine)
        if not state.up_to_date:
            # Not migrated yet (a fresh install): nothing can be half-done, and /health already says "down".
            log.warning("startup_recovery_skipped", reason="migrations pending", current=state.current, head=state.head)
            return
        results = await Checkout(database, crypto, gateway).recover()
        finished = await Refunds(database, crypto, gateway).finish_pending()
    except Exception:  # a failed recovery must not stop the register; `posomni sagas recover` retries it
        log.exception("startup_recovery_failed")
        return
    if results or finished:
        log.info("startup_recovery", sales=results, refunds=finished)


def create_app(
    settings: Settings | None = None, *, database: Database | None = None, embedded_worker: bool = False
) -> FastAPI:
    """`database` may be passed in (tests share one); otherwise it is created from the settings.
    `embedded_worker` runs the background worker inside this process (one-machine stores)."""
    resolved = settings if settings is not None else load_settings()
    development = resolved.env is Environment.DEVELOPMENT

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_database = database is None
        db = database if database is not None else Database(resolved.database_url.get_secret_value())
        cache = CacheService.from_settings(resolved, namespace=resolved.redis_namespace)
        await cache.start()
        crypto = bootstrap.encryption(resolved)
        auth = bootstrap.auth_adapters(resolved, cache, crypto)
        app.state.settings = resolved
        app.state.database = db
        monitoring.start(app, db)
        app.state.cache = cache
        app.state.crypto = crypto
        app.state.auth = auth
        app.state.limiter = auth.limiter if resolved.rate_limit_enabled else None
        gateway = bootstrap.card_gateway(resolved)
        app.state.card_gateway = gateway
        backoffice = build_backoffice_client(resolved)
        app.state.backoffice = backoffice
        stop = asyncio.Event()
        background = [
            asyncio.create_task(
                worker.run(db, crypto, gateway, backoffice, cache, stop, resolved)
                if embedded_worker
                else _recover_interrupted(db, crypto, gateway)
            )
        ]
        log.info("started", environment=resolved.env.value, database=db.kind, cache=cache.mode)
        try:
            yield
        finally:
            stop.set()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await backoffice.close()
            if gateway is not None:
                await gateway.close()
            await cache.close()
            if own_database:
                await db.dispose()
            await monitoring.stop(app)

    app = FastAPI(
        title="POS-Omni",
        version=__version__,
        description="Point of sale for liquor stores.",
        lifespan=lifespan,
        docs_url="/docs" if development else None,
        redoc_url=None,
    )
    # Set before the lifespan runs, so handlers can read them even during start-up.
    app.state.settings = resolved
    install_error_handlers(app)
    document_error_responses(app)
    # Starlette runs the middleware added last first: request id → monitoring (log context, metrics) → security
    # headers → CORS → rate limit → card-data guard (refuses card numbers before any route, log line or error
    # report sees them).
    app.add_middleware(CardDataGuardMiddleware)
    if resolved.rate_limit_enabled:
        app.add_middleware(ClientRateLimitMiddleware, limit=resolved.rate_limit_per_client)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(resolved.allowed_origins),
        allow_credentials="*" not in resolved.allowed_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-CSRF-Token", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=not development, docs_path="/docs" if development else None)
    monitoring.install(app, resolved)
    app.add_middleware(RequestIdMiddleware)
    for router in (
        health_router, auth_router, users_router, audit_router, shifts_router, sales_router, customers_router,
        payments_router, compliance_router, stores_router, catalog_router, inventory_router,
    ):  # fmt: skip
        app.include_router(router)
    # The screens: the sign-in page at "/", the register and the back office (docs/screens.md).
    app.include_router(web_pages)
    app.include_router(web_api)
    app.mount("/static", StaticFiles(packages=[("posomni", "web/static")]), name="static")
    return app


ENV_FILE_VARIABLE = "POSOMNI_ENV_FILE"
EMBEDDED_WORKER_VARIABLE = "POSOMNI_EMBEDDED_WORKER"


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (`posomni serve`, `posomni health`): each worker process builds its app
    from the same environment and the .env file named by POSOMNI_ENV_FILE."""
    settings = load_settings(Path(os.environ.get(ENV_FILE_VARIABLE, DEFAULT_ENV_FILE)))
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, embedded_worker=os.environ.get(EMBEDDED_WORKER_VARIABLE) == "1")
