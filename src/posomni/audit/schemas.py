from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    id: int
    chain: str
    seq: int
    occurred_at: datetime
    store_id: int | None
    register_id: int | None
    actor_id: int | None
    actor_role: str | None
    action: str
    target_type: str | None
    target_id: str | None
    request_id: str | None
    details: Any
    entry_hash: str


class ChainReportOut(BaseModel):
    chain: str
    ok: bool
    entries_checked: int
    last_seq: int
    first_broken_seq: int | None
    problem: str | None


class VerifyOut(BaseModel):
    ok: bool
    chains: list[ChainReportOut]
