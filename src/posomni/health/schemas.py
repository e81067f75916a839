from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

ComponentStatus = Literal["ok", "degraded", "down"]


class Component(BaseModel):
    status: ComponentStatus
    critical: bool
    details: dict[str, Any]


class HealthReport(BaseModel):
    status: ComponentStatus
    version: str
    environment: str
    checked_at: datetime
    components: dict[str, Component]


class BackupHealth(BaseModel):
    status: ComponentStatus
    last_success_at: datetime | None
    age_hours: float | None
    size_bytes: int | None
    location: str | None
    max_age_hours: float
    message: str
    # When `posomni backup verify` last proved this backup restorable; why it failed when it did not.
    verified_at: datetime | None = None
    verify_error: str | None = None
