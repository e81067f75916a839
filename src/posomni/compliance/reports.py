"""Compliance reports for managers and auditors: checks per day, clerk and result; refusals and overrides with
their reasons; completed sales of age-restricted items without a covering check (must be zero). Read-only.

Dates are the store's business dates, inclusive at both ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final, TypeVarTuple

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from posomni.compliance.models import ComplianceEvent
from posomni.compliance.repository import DEFAULT_MIN_AGE, covering_condition
from posomni.compliance.schemas import (
    ClerkCounts,
    ClerkWithoutBirthDate,
    Counts,
    DayCounts,
    EventOut,
    OverrideReportOut,
    RefusalOut,
    SummaryOut,
    UnverifiedSaleOut,
    UnverifiedSalesOut,
)
from posomni.kit.errors import ValidationFailed
from posomni.sales.models import Sale, SaleKind, SaleLine, SaleStatus
from posomni.users.models import User

Row = TypeVarTuple("Row")
MAX_RANGE: Final = timedelta(days=3660)
# Spreadsheets run a cell that starts with one of these as a formula; a reason typed at the register must not.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ReportScope:
    date_from: date
    date_to: date
    store_id: int | None = None

    def check(self) -> ReportScope:
        if self.date_from > self.date_to:
            raise ValidationFailed("`from` must not be after `to`.", details={"field": "from"})
        if self.date_to - self.date_from > MAX_RANGE:
            raise ValidationFailed("Report at most ten years at a time.", details={"field": "to"})
        return self


@dataclass(frozen=True, slots=True)
class EventFilter:
    date_from: date | None = None
    date_to: date | None = None
    store_id: int | None = None
    clerk_id: int | None = None
    sale_id: int | None = None
    customer_id: int | None = None
    result: str | None = None
    method: str | None = None
    reason: str | None = None
    before_id: int | None = None
    limit: int = 100


def _in_scope(query: Select[*Row], scope: ReportScope) -> Select[*Row]:
    query = query.where(ComplianceEvent.business_date.between(scope.date_from, scope.date_to))
    if scope.store_id is not None:
        query = query.where(ComplianceEvent.store_id == scope.store_id)
    return query


def event_out(event: ComplianceEvent) -> EventOut:
    return EventOut(
        id=event.id,
        occurred_at=event.occurred_at,
        business_date=event.business_date,
        store_id=event.store_id,
        register_id=event.register_id,
        clerk_id=event.clerk_id,
        customer_id=event.customer_id,
        sale_id=event.sale_id,
        method=event.method,
        document_type=event.document_type,
        jurisdiction=event.jurisdiction,
        result=event.result,
        reason=event.reason,
        checked_min_age=event.checked_min_age,
        override_manager_id=event.override_manager_id,
        override_reason=event.override_reason,
        overrides_event_id=event.overrides_event_id,
    )


async def list_events(session: AsyncSession, filters: EventFilter) -> list[EventOut]:
    query = select(ComplianceEvent).order_by(ComplianceEvent.id.desc()).limit(filters.limit)
    if filters.date_from is not None:
        query = query.where(ComplianceEvent.business_date >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(ComplianceEvent.business_date <= filters.date_to)
    for column, value in (
        (ComplianceEvent.store_id, filters.store_id),
        (ComplianceEvent.clerk_id, filters.clerk_id),
        (ComplianceEvent.sale_id, filters.sale_id),
        (ComplianceEvent.customer_id, filters.customer_id),
        (ComplianceEvent.result, filters.result),
        (ComplianceEvent.method, filters.method),
        (ComplianceEvent.reason, filters.reason),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.before_id is not None:
        query = query.where(ComplianceEvent.id < filters.before_id)
    return [event_out(e) for e in await session.scalars(query)]


def _counting() -> tuple[Any, ...]:
    def count_of(result: str) -> Any:
        return func.coalesce(func.sum(case((ComplianceEvent.result == result, 1), else_=0)), 0)

    return func.count(ComplianceEvent.id), count_of("passed"), count_of("refused"), count_of("overridden")


def _counts(row: Sequence[Any]) -> dict[str, int]:
    return {"checks": int(row[0]), "passed": int(row[1]), "refused": int(row[2]), "overridden": int(row[3])}


async def summary(session: AsyncSession, scope: ReportScope) -> SummaryOut:
    scope.check()
    total = (await session.execute(_in_scope(select(*_counting()), scope))).one()
    days = await session.execute(
        _in_scope(select(ComplianceEvent.business_date, *_counting()), scope)
        .group_by(ComplianceEvent.business_date)
        .order_by(ComplianceEvent.business_date)
    )
    clerks = await session.execute(
        _in_scope(select(ComplianceEvent.clerk_id, User.username, *_counting()), scope)
        .join(User, User.id == ComplianceEvent.clerk_id)
        .group_by(ComplianceEvent.clerk_id, User.username)
        .order_by(ComplianceEvent.clerk_id)
    )
    methods = await session.execute(
        _in_scope(select(ComplianceEvent.method, func.count(ComplianceEvent.id)), scope).group_by(
            ComplianceEvent.method
        )
    )
    unverified = await unverified_sales(session, scope)
    return SummaryOut(
        date_from=scope.date_from,
        date_to=scope.date_to,
        store_id=scope.store_id,
        totals=Counts(**_counts(total)),
        by_day=[DayCounts(business_date=row[0], **_counts(row[1:])) for row in days],
        by_clerk=[ClerkCounts(clerk_id=row[0], clerk=row[1], **_counts(row[2:])) for row in clerks],
        by_method={method: int(count) for method, count in methods},
        refusals=await _refusals(session, scope),
        overrides=await _overrides(session, scope),
        unverified_sales=unverified.count,
        clerks_without_birth_date=await _clerks_without_birth_date(session, scope),
    )


async def _refusals(session: AsyncSession, scope: ReportScope) -> list[RefusalOut]:
    override = aliased(ComplianceEvent)
    rows = await session.execute(
        _in_scope(select(ComplianceEvent, User.username, override.id), scope)
        .join(User, User.id == ComplianceEvent.clerk_id)
        .outerjoin(override, override.overrides_event_id == ComplianceEvent.id)
        .where(ComplianceEvent.result == "refused")
        .order_by(ComplianceEvent.id)
    )
    return [
        RefusalOut(
            event_id=e.id,
            occurred_at=e.occurred_at,
            business_date=e.business_date,
            store_id=e.store_id,
            clerk_id=e.clerk_id,
            clerk=clerk,
            method=e.method,
            reason=e.reason,
            document_type=e.document_type,
            jurisdiction=e.jurisdiction,
            sale_id=e.sale_id,
            overridden_by_event_id=overridden_by,
        )
        for e, clerk, overridden_by in rows
    ]


async def _overrides(session: AsyncSession, scope: ReportScope) -> list[OverrideReportOut]:
    manager = aliased(User)
    rows = await session.execute(
        _in_scope(select(ComplianceEvent, User.username, manager.username), scope)
        .join(User, User.id == ComplianceEvent.clerk_id)
        .outerjoin(manager, manager.id == ComplianceEvent.override_manager_id)
        .where(ComplianceEvent.result == "overridden")
        .order_by(ComplianceEvent.id)
    )
    return [
        OverrideReportOut(
            event_id=e.id,
            occurred_at=e.occurred_at,
            business_date=e.business_date,
            store_id=e.store_id,
            clerk_id=e.clerk_id,
            clerk=clerk,
            manager_id=e.override_manager_id,
            manager=manager_name,
            reason=e.reason,
            override_reason=e.override_reason,
            overrides_event_id=e.overrides_event_id,
            sale_id=e.sale_id,
        )
        for e, clerk, manager_name in rows
    ]


def _restricted_sales(scope: ReportScope) -> Any:
    """Completed sales in scope with their highest minimum age among age-restricted lines."""
    query = (
        select(SaleLine.sale_id, func.max(func.coalesce(SaleLine.min_age, DEFAULT_MIN_AGE)).label("required"))
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(
            SaleLine.age_restricted.is_(True),
            Sale.status == SaleStatus.COMPLETED.value,
            Sale.kind == SaleKind.SALE.value,
            Sale.business_date.between(scope.date_from, scope.date_to),
        )
        .group_by(SaleLine.sale_id)
    )
    if scope.store_id is not None:
        query = query.where(Sale.store_id == scope.store_id)
    return query.subquery()


async def unverified_sales(session: AsyncSession, scope: ReportScope) -> UnverifiedSalesOut:
    """Completed sales of age-restricted items with no passing or overridden ID check for the sale that covers
    their highest minimum age. The same rule as the checkout's, so a correct checkout leaves this empty."""
    scope.check()
    required = _restricted_sales(scope)
    checked = (
        select(ComplianceEvent.sale_id, func.max(ComplianceEvent.checked_min_age).label("best"))
        .where(ComplianceEvent.sale_id.is_not(None), covering_condition())
        .group_by(ComplianceEvent.sale_id)
        .subquery()
    )
    rows = await session.execute(
        select(Sale, required.c.required, checked.c.best)
        .join(required, required.c.sale_id == Sale.id)
        .outerjoin(checked, checked.c.sale_id == Sale.id)
        .where((checked.c.best.is_(None)) | (checked.c.best < required.c.required))
        .order_by(Sale.id)
    )
    sales = [
        UnverifiedSaleOut(
            sale_id=sale.id,
            receipt_number=sale.receipt_number,
            store_id=sale.store_id,
            business_date=sale.business_date,
            completed_at=sale.completed_at,
            cashier_id=sale.cashier_id,
            required_min_age=int(need),
            best_checked_min_age=None if best is None else int(best),
        )
        for sale, need, best in rows
    ]
    return UnverifiedSalesOut(
        date_from=scope.date_from, date_to=scope.date_to, store_id=scope.store_id, count=len(sales), sales=sales
    )


async def _clerks_without_birth_date(session: AsyncSession, scope: ReportScope) -> list[ClerkWithoutBirthDate]:
    # Such a clerk is allowed to sell (we cannot tell their age), but the owner should put the date on file.
    required = _restricted_sales(scope)
    rows = await session.execute(
        select(User.id, User.username, func.count(Sale.id))
        .join(Sale, Sale.cashier_id == User.id)
        .join(required, required.c.sale_id == Sale.id)
        .where(User.birth_date.is_(None))
        .group_by(User.id, User.username)
        .order_by(User.id)
    )
    return [ClerkWithoutBirthDate(clerk_id=i, clerk=name, age_restricted_sales=int(n)) for i, name, n in rows]


# --- CSV ------------------------------------------------------------------------------------------------------

SUMMARY_COLUMNS: Final = (
    "section", "business_date", "store_id", "clerk_id", "clerk", "event_id", "occurred_at", "method", "result",
    "reason", "override_reason", "manager_id", "overrides_event_id", "sale_id", "receipt_number",
    "required_min_age", "checks", "passed", "refused", "overridden",
)  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def summary_rows(report: SummaryOut, unverified: UnverifiedSalesOut) -> list[dict[str, Any]]:
    """One flat table: a `section` column says what each row is (total, day, clerk, refusal, override,
    unverified_sale, clerk_without_birth_date)."""
    rows: list[dict[str, Any]] = [{"section": "total", "store_id": report.store_id, **report.totals.model_dump()}]
    rows += [{"section": "day", **d.model_dump()} for d in report.by_day]
    rows += [{"section": "clerk", **c.model_dump()} for c in report.by_clerk]
    rows += [{"section": "refusal", "result": "refused", **r.model_dump()} for r in report.refusals]
    rows += [
        {"section": "override", "result": "overridden", **o.model_dump(), "clerk": o.clerk, "manager_id": o.manager_id}
        for o in report.overrides
    ]
    rows += [{"section": "unverified_sale", "clerk_id": s.cashier_id, **s.model_dump()} for s in unverified.sales]
    rows += [
        {"section": "clerk_without_birth_date", "clerk_id": c.clerk_id, "clerk": c.clerk, "checks": None}
        for c in report.clerks_without_birth_date
    ]
    return rows


UNVERIFIED_COLUMNS: Final = (
    "sale_id", "receipt_number", "store_id", "business_date", "completed_at", "cashier_id", "required_min_age",
    "best_checked_min_age",
)  # fmt: skip
EVENT_COLUMNS: Final = tuple(EventOut.model_fields)
