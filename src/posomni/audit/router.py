from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from posomni.audit import service
from posomni.audit.schemas import AuditEntryOut, ChainReportOut, VerifyOut
from posomni.auth.dependencies import Auth, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.dependencies import DbSession

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]


@router.get("/entries", response_model=list[AuditEntryOut])
async def list_entries(
    session: DbSession,
    auth: Auth,
    principal: Auditor,
    occurred_from: Annotated[datetime | None, Query(alias="from")] = None,
    occurred_to: Annotated[datetime | None, Query(alias="to")] = None,
    actor_id: Annotated[int | None, Query(ge=1)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    store_id: Annotated[int | None, Query(ge=1)] = None,
    before_id: Annotated[int | None, Query(ge=1, description="Page: entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntryOut]:
    filters = service.AuditFilter(
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        actor_id=actor_id,
        action=action,
        store_id=store_id,
        before_id=before_id,
        limit=limit,
    )
    rows = await service.list_entries(session, auth.crypto, filters)
    return [
        AuditEntryOut(
            id=e.id,
            chain=e.chain,
            seq=e.seq,
            occurred_at=e.occurred_at,
            store_id=e.store_id,
            register_id=e.register_id,
            actor_id=e.actor_id,
            actor_role=e.actor_role,
            action=e.action,
            target_type=e.target_type,
            target_id=e.target_id,
            request_id=e.request_id,
            details=details,
            entry_hash=e.entry_hash,
        )
        for e, details in rows
    ]


@router.get("/verify", response_model=VerifyOut)
async def verify(
    session: DbSession,
    auth: Auth,
    principal: Auditor,
    store_id: Annotated[int | None, Query(ge=1, description="One store's chain; all chains when absent")] = None,
) -> VerifyOut:
    reports = await service.verify_all(session, auth.crypto, service.ALL_CHAINS if store_id is None else store_id)
    return VerifyOut(ok=all(r.ok for r in reports), chains=[ChainReportOut(**r.as_dict()) for r in reports])
