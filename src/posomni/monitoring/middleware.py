"""Per-request monitoring: the request id in every log line, the HTTP metrics, and the performance samples.

Order (outermost first): `RequestIdMiddleware` (app.py) → `RequestContextMiddleware` → the instrumentator's
middleware → the rest of the app. The context is therefore bound before anything below logs, and the
instrumentator's callbacks (which log slow requests) still run inside it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

import sentry_sdk
import structlog
from prometheus_fastapi_instrumentator import metrics as http_metrics
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from posomni.logging import get_logger
from posomni.monitoring.metrics import app_metrics, http_instrumentations
from posomni.monitoring.performance import PerformanceTracker, RequestContext, current_request

log = get_logger(__name__)

ROUTE_CACHE_SIZE: Final = 4096


class RequestContextMiddleware:
    """Binds the request id (set by `RequestIdMiddleware`) into structlog's context variables, so every log
    line written while serving the request carries it, and into the Sentry scope of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        context_token = current_request.set(RequestContext(request_id, scope))
        # Tokens restore exactly what was bound before: under httpx's ASGI transport (tests) the app runs in
        # the caller's task, and a leftover binding would tag the caller's own log lines.
        log_tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        if request_id is not None and sentry_sdk.get_client().is_active():
            # The Sentry integration gives each request its own isolation scope, outside this middleware.
            sentry_sdk.get_isolation_scope().set_tag("request_id", request_id)
        try:
            await self.app(scope, receive, send)
        finally:
            structlog.contextvars.reset_contextvars(**log_tokens)
            current_request.reset(context_token)


class TemplatedRequestsMiddleware(PrometheusInstrumentatorMiddleware):
    """prometheus-fastapi-instrumentator's middleware with its route-template lookup remembered per path.

    The library finds the template by matching the path against every route of the app before the request
    runs — as much work again as the router's own matching (measured: most of the instrumentation's cost).
    The answer depends only on the method and path, and the routes do not change once the app serves, so it is
    kept in a bounded LRU: paths with ids (`/sales/17/items`) repeat while a sale is rung up, and a flood of
    distinct paths only evicts entries."""

    def __init__(self, app: ASGIApp, *, instrumentations: Sequence[Callable[[http_metrics.Info], None]]) -> None:
        super().__init__(
            app,
            instrumentations=instrumentations,
            # Exact statuses (401 vs 403 matters to an operator); routes as templates; unmatched paths grouped
            # as "none" so random URLs cannot create new series.
            should_group_status_codes=False,
            should_group_untemplated=True,
            should_ignore_untemplated=False,
        )
        # Only the event loop's thread calls the middleware: no lock needed.
        self._handlers: OrderedDict[tuple[str, str, str], tuple[str, bool]] = OrderedDict()

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        key = (request.method, request.scope.get("root_path", ""), request.scope["path"])
        found = self._handlers.get(key)
        if found is not None:
            self._handlers.move_to_end(key)
            return found
        found = super()._get_handler(request)
        self._handlers[key] = found
        if len(self._handlers) > ROUTE_CACHE_SIZE:
            self._handlers.popitem(last=False)
        return found


def _performance_recorder(tracker: PerformanceTracker) -> Callable[[http_metrics.Info], None]:
    slow_counter = app_metrics().slow_requests

    def record(info: http_metrics.Info) -> None:
        status = info.response.status_code if info.response is not None else 500
        request_id = info.request.scope.get("state", {}).get("request_id")
        if tracker.observe_request(info.method, info.modified_handler, status, info.modified_duration, request_id):
            slow_counter.inc()
            # The request id comes from the bound context, like every other line of this request.
            log.warning(
                "slow_request",
                method=info.method,
                route=info.modified_handler,
                status=status,
                duration_ms=round(info.modified_duration * 1000, 1),
                threshold_ms=tracker.slow_request_ms,
            )

    return record


def instrument_requests(app: Starlette, tracker: PerformanceTracker) -> None:
    """Add the HTTP metrics and performance middleware, then the context middleware around them."""
    app.add_middleware(
        TemplatedRequestsMiddleware, instrumentations=[*http_instrumentations(), _performance_recorder(tracker)]
    )
    app.add_middleware(RequestContextMiddleware)
