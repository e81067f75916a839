from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from posomni.auth.dependencies import client_address, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.dependencies import AppSettings
from posomni.monitoring import service
from posomni.monitoring.performance import PerformanceTracker
from posomni.monitoring.schemas import PerformanceReport

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
Manager = Annotated[Principal, Depends(require(Permission.PERFORMANCE_VIEW))]

_SCRAPE_REFUSALS: dict[int | str, dict[str, Any]] = {
    200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
    401: {"description": "No scrape token (metrics_token_required) or a wrong one (metrics_token_invalid)"},
    403: {"description": "No token configured and the address is outside METRICS_ALLOWED_NETWORKS"},
}


def scrape_access(request: Request, settings: AppSettings) -> None:
    """The scrape's own authentication: METRICS_TOKEN or METRICS_ALLOWED_NETWORKS, never a staff session."""
    service.check_scrape_access(settings, client_address(request), request.headers.get("authorization", ""))


@router.get(
    "/metrics",
    response_class=Response,
    responses=_SCRAPE_REFUSALS,
    dependencies=[Depends(scrape_access)],
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (HTTP, database, sales, payments, age checks, outbox, Redis)."""
    body = await service.metrics_text(request.app.state.database)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


@router.get("/performance", response_model=PerformanceReport)
async def performance(request: Request, principal: Manager) -> PerformanceReport:
    """Latency percentiles per route over the sliding window, the slowest requests, slow requests and slow
    (normalised) statements of this process."""
    tracker: PerformanceTracker = request.app.state.performance
    return tracker.report()
