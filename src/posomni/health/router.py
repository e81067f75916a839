from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from posomni.health import service
from posomni.health.schemas import BackupHealth, HealthReport

router = APIRouter(prefix="/health", tags=["health"])


@router.get(
    "",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "A critical component (the database) is down"}},
)
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    report = await service.health_report(state.database, state.cache, state.settings, state.backoffice)
    return JSONResponse(report.model_dump(mode="json"), status_code=503 if report.status == "down" else 200)


@router.get("/backup", response_model=BackupHealth)
async def backup(request: Request) -> BackupHealth:
    state = request.app.state
    return await service.backup_health(state.database, state.settings)
