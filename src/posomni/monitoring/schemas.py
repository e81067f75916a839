from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RouteLatency(BaseModel):
    method: str
    route: str = Field(description="The route template, e.g. /sales/{sale_id}")
    count: int
    server_errors: int = Field(description="Responses with a 5xx status in the window")
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


class RequestSampleOut(BaseModel):
    at: datetime
    method: str
    route: str
    status: int
    duration_ms: float
    request_id: str | None


class SlowQueryOut(BaseModel):
    at: datetime
    sql: str = Field(description="Normalised: every literal and parameter is '?'")
    duration_ms: float
    request_id: str | None
    route: str | None


class SlowQueryGroup(BaseModel):
    sql: str
    count: int
    total_ms: float
    mean_ms: float
    max_ms: float
    last_at: datetime


class PerformanceReport(BaseModel):
    generated_at: datetime
    window_seconds: int
    routes: list[RouteLatency] = Field(description="Per route over the window, slowest p95 first")
    slowest_requests: list[RequestSampleOut] = Field(description="The slowest requests of the window")
    slow_request_threshold_ms: int
    slow_requests: list[RequestSampleOut] = Field(description="Recent requests above the threshold, newest first")
    slow_query_threshold_ms: int
    slow_queries: list[SlowQueryOut] = Field(description="Recent statements above the threshold, newest first")
    slow_query_groups: list[SlowQueryGroup] = Field(description="Slow statements by shape, most total time first")
