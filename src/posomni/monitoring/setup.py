"""Wiring for the composition root: `install` when the app is built, `start`/`stop` in its lifespan."""

from __future__ import annotations

from fastapi import FastAPI

from posomni.backoffice.metrics import backoffice_metrics
from posomni.config import Settings
from posomni.database import Database
from posomni.monitoring.metrics import app_metrics
from posomni.monitoring.middleware import instrument_requests
from posomni.monitoring.performance import PerformanceTracker
from posomni.monitoring.queries import instrument_engine
from posomni.monitoring.router import router
from posomni.monitoring.sentry import start_sentry, stop_sentry
from posomni.outbox.metrics import outbox_metrics


def install(app: FastAPI, settings: Settings) -> None:
    """Call before `RequestIdMiddleware` is added, so that the request id exists when this middleware runs.

    Sentry starts here rather than in the lifespan: its integration must be in place before the app builds
    its middleware stack, which happens on the app's first call (the lifespan's)."""
    app.state.performance = PerformanceTracker(
        slow_request_ms=settings.slow_request_ms, slow_query_ms=settings.slow_query_ms
    )
    app.state.sentry = start_sentry(settings)
    # Created now so that every family is in the first scrape, even before a sale or a delivery happened.
    app_metrics()
    outbox_metrics()
    backoffice_metrics()
    instrument_requests(app, app.state.performance)
    app.include_router(router)


def start(app: FastAPI, database: Database) -> None:
    app.state.detach_query_timing = instrument_engine(database.engine.sync_engine, app.state.performance)


async def stop(app: FastAPI) -> None:
    detach = getattr(app.state, "detach_query_timing", None)
    if detach is not None:
        detach()
    if app.state.sentry:
        await stop_sentry()
