from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from posomni.auth.dependencies import Auth, actor, client_address, require
from posomni.auth.permissions import Permission
from posomni.auth.principal import Principal
from posomni.auth.service import ManagerCredentials
from posomni.compliance import overrides, reports, service
from posomni.compliance.dependencies import Now
from posomni.compliance.schemas import (
    MAX_ID,
    EventOut,
    IdCheckIn,
    IdCheckOut,
    OverrideIn,
    OverrideOut,
    SummaryOut,
    UnverifiedSalesOut,
)
from posomni.dependencies import DbSession
from posomni.kit.errors import PermissionDenied

router = APIRouter(prefix="/compliance", tags=["compliance"])
Checker = Annotated[Principal, Depends(require(Permission.COMPLIANCE_CHECK))]
Reporter = Annotated[Principal, Depends(require(Permission.COMPLIANCE_REPORTS))]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
DateFrom = Annotated[date, Query(alias="from", description="First business date, inclusive")]
DateTo = Annotated[date, Query(alias="to", description="Last business date, inclusive")]
StoreFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _evidence(body: IdCheckIn) -> service.Evidence:
    if body.method == "scan":
        assert body.raw is not None  # the schema requires it for scans
        return service.ScanEvidence(body.raw)
    if body.method == "manual":
        return service.ManualEvidence(
            dob=body.dob,
            expires=body.expires,
            document_type=body.document_type,
            photo_compared=body.photo_compared,
            issued=body.issued,
            jurisdiction=body.jurisdiction,
        )
    return service.ProfileEvidence()


@router.post("/id-checks", response_model=IdCheckOut, status_code=201)
async def check_id(
    body: IdCheckIn, request: Request, session: DbSession, auth: Auth, principal: Checker, now: Now
) -> IdCheckOut:
    who = actor(request, principal)
    store = await service.resolve_store(session, who, store_id=body.store_id, sale_id=body.sale_id)
    result = await service.check_id(
        session, auth.crypto, who, store=store, evidence=_evidence(body), now=now, sale_id=body.sale_id,
        customer_id=body.customer_id, min_age=body.min_age, save_to_profile=body.save_to_profile,
    )  # fmt: skip
    event = result.event
    return IdCheckOut(
        event_id=event.id,
        result=event.result,
        method=event.method,
        document_type=event.document_type,
        jurisdiction=event.jurisdiction,
        checked_min_age=event.checked_min_age,
        business_date=event.business_date,
        occurred_at=event.occurred_at,
        sale_id=event.sale_id,
        customer_id=event.customer_id,
        under_21_mismatch=result.under_21_mismatch,
        profile_saved=result.profile_saved,
    )


@router.post("/id-checks/{event_id}/override", response_model=OverrideOut, status_code=201)
async def override(
    event_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: OverrideIn,
    request: Request,
    session: DbSession,
    auth: Auth,
    principal: Checker,
    now: Now,
) -> OverrideOut:
    credentials = ManagerCredentials(body.manager_username, body.manager_pin, body.manager_password)
    event = await overrides.override(
        session, auth, actor(request, principal), event_id=event_id, credentials=credentials, reason=body.reason,
        now=now, client_address=client_address(request),
        manual=overrides.ManualDates(body.dob, body.expires, body.document_type),
    )  # fmt: skip
    assert event.overrides_event_id is not None and event.override_manager_id is not None
    return OverrideOut(
        event_id=event.id,
        overrides_event_id=event.overrides_event_id,
        result=event.result,
        reason=event.reason,
        override_manager_id=event.override_manager_id,
        business_date=event.business_date,
        occurred_at=event.occurred_at,
    )


def _store_scope(principal: Principal, store_id: int | None) -> int | None:
    # A store's manager reports on their own store; chain-wide users (admins, auditors) on any or all.
    if principal.store_id is None:
        return store_id
    if store_id is not None and store_id != principal.store_id:
        raise PermissionDenied("You can report on your own store only.", details={"store_id": store_id})
    return principal.store_id


def _csv(name: str, text: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/events", response_model=list[EventOut])
async def list_events(
    session: DbSession,
    principal: Reporter,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    store_id: StoreFilter = None,
    clerk_id: IdFilter = None,
    sale_id: IdFilter = None,
    customer_id: IdFilter = None,
    result: Literal["passed", "refused", "overridden"] | None = None,
    method: Literal["scan", "manual", "override", "profile", "tender"] | None = None,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Page: events older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Format = "json",
) -> list[EventOut] | Response:
    filters = reports.EventFilter(
        date_from=date_from, date_to=date_to, store_id=_store_scope(principal, store_id), clerk_id=clerk_id,
        sale_id=sale_id, customer_id=customer_id, result=result, method=method, reason=reason, before_id=before_id,
        limit=limit,
    )  # fmt: skip
    events = await reports.list_events(session, filters)
    if format == "csv":
        return _csv("compliance-events", reports.to_csv(reports.EVENT_COLUMNS, (e.model_dump() for e in events)))
    return events


@router.get("/reports/summary", response_model=SummaryOut)
async def summary(
    session: DbSession,
    principal: Reporter,
    date_from: DateFrom,
    date_to: DateTo,
    store_id: StoreFilter = None,
    format: Format = "json",
) -> SummaryOut | Response:
    scope = reports.ReportScope(date_from, date_to, _store_scope(principal, store_id))
    report = await reports.summary(session, scope)
    if format == "csv":
        unverified = await reports.unverified_sales(session, scope)
        rows = reports.summary_rows(report, unverified)
        return _csv(f"compliance-summary-{date_from}-{date_to}", reports.to_csv(reports.SUMMARY_COLUMNS, rows))
    return report


@router.get("/reports/unverified-sales", response_model=UnverifiedSalesOut)
async def unverified_sales(
    session: DbSession,
    principal: Reporter,
    date_from: DateFrom,
    date_to: DateTo,
    store_id: StoreFilter = None,
    format: Format = "json",
) -> UnverifiedSalesOut | Response:
    scope = reports.ReportScope(date_from, date_to, _store_scope(principal, store_id))
    report = await reports.unverified_sales(session, scope)
    if format == "csv":
        rows = (s.model_dump() for s in report.sales)
        return _csv(f"unverified-sales-{date_from}-{date_to}", reports.to_csv(reports.UNVERIFIED_COLUMNS, rows))
    return report
