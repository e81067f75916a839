"""Read-only views the screens need that no domain API offers yet: the register's status, sales by day,
category or hour, and the shift (Z) history. Every number comes from the domain tables; nothing is decided
here that the API would decide differently."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from posomni.auth.principal import Principal
from posomni.catalog.models import Category, Product
from posomni.compliance import service as compliance
from posomni.compliance.models import ComplianceEvent
from posomni.compliance.repository import covering_condition, sale_min_age
from posomni.compliance.rules import store_local_date
from posomni.config import Settings
from posomni.customers import service as customers
from posomni.kit.errors import NotFound, PermissionDenied, ValidationFailed
from posomni.kit.time import utcnow
from posomni.payments import service as payments
from posomni.payments.gateway import PaymentGateway
from posomni.payments.simulated import SimulatedCardProcessor
from posomni.sales import service as sales
from posomni.sales.models import Sale, SaleKind, SaleLine, SaleStatus
from posomni.shifts.models import Shift
from posomni.stores.models import Register, Store
from posomni.stores.service import StoreSettingsBroken
from posomni.users.models import User
from posomni.web.schemas import (
    CardMethod,
    IdStatus,
    RegisterStatus,
    SaleHoursNow,
    SalesBucket,
    SalesReportOut,
    ShiftSummary,
)

# Stripe's test payment methods for keyed card tenders outside production (no card number ever passes here).
STRIPE_TEST_METHODS = {"visa": "pm_card_visa", "mastercard": "pm_card_mastercard", "declined": "pm_card_chargeDeclined"}
MAX_REPORT_DAYS = 366


def store_for(principal: Principal, store_id: int | None) -> int:
    """The store a request reads: the caller's own, or (chain-wide accounts) the one asked for."""
    if principal.store_id is not None:
        if store_id is not None and store_id != principal.store_id:
            raise PermissionDenied("Your account works in another store.", details={"store_id": store_id})
        return principal.store_id
    if store_id is None:
        raise ValidationFailed("Say which store (store_id): your account is not tied to one.")
    return store_id


def _card_methods(settings: Settings, gateway: PaymentGateway | None) -> list[CardMethod]:
    if gateway is None or settings.is_production:
        return []
    if isinstance(gateway, SimulatedCardProcessor):
        return [CardMethod(name=name, payment_method=pm) for name, pm in payments.SIMULATED_TEST_CARDS.items()]
    return [CardMethod(name=name, payment_method=pm) for name, pm in STRIPE_TEST_METHODS.items()]


async def register_status(
    session: AsyncSession, principal: Principal, register_id: int, settings: Settings, gateway: PaymentGateway | None
) -> RegisterStatus:
    register = await session.get(Register, register_id)
    if register is None or (principal.store_id is not None and register.store_id != principal.store_id):
        raise NotFound("No such register in your store.", details={"register_id": register_id})
    store = await session.get(Store, register.store_id)
    assert store is not None  # a foreign key
    try:
        decision = compliance.sale_hours_at(store, utcnow())
        hours = SaleHoursNow(allowed=decision.allowed, reason=decision.reason)
    except StoreSettingsBroken:
        # The checkout refuses age-restricted sales then too (`store_settings_invalid`).
        hours = SaleHoursNow(allowed=False, reason="invalid_settings")
    methods = _card_methods(settings, gateway)
    reader = register.card_reader_id if gateway is not None else None
    mode: Literal["reader", "methods", "none"] = "reader" if reader else ("methods" if methods else "none")
    return RegisterStatus(
        register_id=register.id,
        register_code=register.code,
        register_name=register.name,
        store_id=store.id,
        store_name=store.name,
        card_mode=mode,
        card_reader_id=reader,
        card_methods=methods,
        test_reader=reader is not None and not settings.is_production,
        sale_hours=hours,
        point_value_cents=str(customers.point_value_cents(store.settings or {})),
    )


async def id_status(session: AsyncSession, principal: Principal, sale_id: int) -> IdStatus:
    """Read-only: the same questions the checkout's compliance step asks (`compliance.authorize_sale`), so the
    screen can say "ID checked" before tender. The checkout still decides at tender."""
    sale = await sales.load(session, sale_id, principal.store_id)
    required = await sale_min_age(session, sale.id)
    if required is None:
        return IdStatus(sale_id=sale.id, required_min_age=None, covered=True, covering_event_id=None,
                        underage_refused=False)  # fmt: skip
    store = await session.get(Store, sale.store_id)
    assert store is not None  # a foreign key
    on = store_local_date(utcnow(), store.timezone)
    today = (ComplianceEvent.sale_id == sale.id, ComplianceEvent.business_date == on)
    minor = await session.scalar(
        select(func.max(ComplianceEvent.id)).where(
            *today,
            ComplianceEvent.result == "refused",
            ComplianceEvent.reason == "underage",
            ComplianceEvent.checked_min_age <= required,
        )
    )
    covering = await session.scalar(
        select(func.max(ComplianceEvent.id)).where(
            *today, covering_condition(), ComplianceEvent.checked_min_age >= required
        )
    )
    return IdStatus(
        sale_id=sale.id, required_min_age=required, covered=covering is not None and minor is None,
        covering_event_id=covering, underage_refused=minor is not None,
    )  # fmt: skip


def _check_range(date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ValidationFailed("The end date is before the start date.", details={"from": str(date_from)})
    if (date_to - date_from).days > MAX_REPORT_DAYS:
        raise ValidationFailed(f"Report at most {MAX_REPORT_DAYS} days at once.")


def _completed(store_id: int, date_from: date, date_to: date) -> tuple[object, ...]:
    # Voided sales are shown by the Z report; these reports count what was sold and returned.
    return (
        Sale.store_id == store_id,
        Sale.status == SaleStatus.COMPLETED.value,
        Sale.business_date >= date_from,
        Sale.business_date <= date_to,
    )


def _buckets(rows: Iterable[tuple[str, str, int]]) -> list[SalesBucket]:
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for key, kind, cents in rows:
        bucket = found[key]
        if kind == SaleKind.RETURN.value:
            bucket[2] += 1
            bucket[3] += cents
        else:
            bucket[0] += 1
            bucket[1] += cents
    return [
        SalesBucket(key=key, sales=s, sales_cents=sc, returns=r, returns_cents=rc, net_cents=sc - rc)
        for key, (s, sc, r, rc) in sorted(found.items())
    ]


async def sales_report(
    session: AsyncSession, store_id: int, date_from: date, date_to: date, by: Literal["day", "category", "hour"]
) -> SalesReportOut:
    """Completed sales and returns per business day, per category (line totals, before sale-level discounts)
    or per store-local hour of completion. A return's amount is counted as returned, not negated."""
    _check_range(date_from, date_to)
    store = await session.get(Store, store_id)
    if store is None:
        raise NotFound("No store has this id.", details={"store_id": store_id})
    rows: list[tuple[str, str, int]]
    if by == "category":
        by_category = (
            select(Category.name, Sale.kind, SaleLine.line_total_cents)
            .join(SaleLine, SaleLine.sale_id == Sale.id)
            .join(Product, Product.id == SaleLine.product_id)
            .join(Category, Category.id == Product.category_id)
            .where(*_completed(store_id, date_from, date_to))  # type: ignore[arg-type]
        )
        rows = [(name, kind, cents) for name, kind, cents in await session.execute(by_category)]
    elif by == "hour":
        zone = ZoneInfo(store.timezone)
        by_time = select(Sale.completed_at, Sale.kind, Sale.total_cents).where(
            *_completed(store_id, date_from, date_to)  # type: ignore[arg-type]
        )
        rows = []
        for completed_at, kind, cents in await session.execute(by_time):
            if completed_at is None:
                continue
            aware = completed_at if completed_at.tzinfo else completed_at.replace(tzinfo=UTC)
            rows.append((f"{aware.astimezone(zone).hour:02d}:00", kind, cents))
    else:
        by_day = select(Sale.business_date, Sale.kind, Sale.total_cents).where(
            *_completed(store_id, date_from, date_to)  # type: ignore[arg-type]
        )
        rows = [(day.isoformat(), kind, cents) for day, kind, cents in await session.execute(by_day)]
    buckets = _buckets(rows)
    return SalesReportOut(
        store_id=store_id,
        date_from=date_from,
        date_to=date_to,
        by=by,
        buckets=buckets,
        total_sales=sum(b.sales for b in buckets),
        total_net_cents=sum(b.net_cents for b in buckets),
    )


async def shift_history(
    session: AsyncSession, store_id: int, date_from: date, date_to: date, limit: int = 200
) -> list[ShiftSummary]:
    """The store's shifts of a period, newest first: the Z history (closed ones carry their count)."""
    _check_range(date_from, date_to)
    opener, closer = aliased(User), aliased(User)
    query = (
        select(Shift, Register.name, opener.username, closer.username)
        .join(Register, Register.id == Shift.register_id)
        .join(opener, opener.id == Shift.opened_by)
        .outerjoin(closer, closer.id == Shift.closed_by)
        .where(Shift.store_id == store_id, Shift.business_date >= date_from, Shift.business_date <= date_to)
        .order_by(Shift.id.desc())
        .limit(limit)
    )
    return [
        ShiftSummary(
            id=shift.id,
            register_id=shift.register_id,
            register_name=register_name,
            status=shift.status,
            business_date=shift.business_date,
            opened_at=shift.opened_at,
            closed_at=shift.closed_at,
            opened_by=opened_by,
            closed_by=closed_by,
            opening_float_cents=shift.opening_float_cents,
            expected_cash_cents=shift.expected_cash_cents,
            counted_cash_cents=shift.counted_cash_cents,
            over_short_cents=shift.over_short_cents,
        )
        for shift, register_name, opened_by, closed_by in await session.execute(query)
    ]
