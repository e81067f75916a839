"""X (mid-shift) and Z (end of shift) reports, computed from the shift's sales, payments and cash movements."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.audit.chain import chain_for
from posomni.audit.models import AuditChainHead
from posomni.compliance.models import ComplianceEvent
from posomni.kit.money import format_cents
from posomni.kit.time import utcnow
from posomni.payments.models import Payment
from posomni.sales.models import Sale, SaleLine, SaleStatus
from posomni.shifts.models import CashMovement, Shift


@dataclass
class ShiftReport:
    kind: str
    shift_id: int
    store_id: int
    register_id: int
    business_date: str
    opened_at: datetime
    closed_at: datetime | None
    generated_at: datetime
    sales_count: int = 0
    gross_sales_cents: int = 0
    discounts_cents: int = 0
    tax_cents: int = 0
    deposits_cents: int = 0
    net_sales_cents: int = 0
    returns_count: int = 0
    returns_cents: int = 0
    returns_tax_cents: int = 0
    net_tax_cents: int = 0
    voids_count: int = 0
    voids_cents: int = 0
    tax_by_class: dict[str, int] = field(default_factory=dict)
    tenders: dict[str, int] = field(default_factory=dict)
    age_restricted_sales: int = 0
    id_checks: dict[str, int] = field(default_factory=dict)
    opening_float_cents: int = 0
    paid_in_cents: int = 0
    paid_out_cents: int = 0
    no_sale_count: int = 0
    expected_cash_cents: int = 0
    counted_cash_cents: int | None = None
    over_short_cents: int | None = None
    audit_chain_head: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("opened_at", "closed_at", "generated_at"):
            value = data[key]
            data[key] = value.isoformat() if value else None
        return data


async def open_sales_count(session: AsyncSession, shift_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                Sale.shift_id == shift_id, Sale.status.in_([SaleStatus.OPEN.value, SaleStatus.COMPLETING.value])
            )
        )
        or 0
    )


async def chain_head(session: AsyncSession, store_id: int) -> str | None:
    head = await session.get(AuditChainHead, chain_for(store_id))
    return None if head is None else f"{head.seq}:{head.last_hash}"


async def build(session: AsyncSession, shift: Shift, *, kind: str) -> ShiftReport:
    report = ShiftReport(
        kind=kind,
        shift_id=shift.id,
        store_id=shift.store_id,
        register_id=shift.register_id,
        business_date=shift.business_date.isoformat(),
        opened_at=shift.opened_at,
        closed_at=shift.closed_at,
        generated_at=utcnow(),
        opening_float_cents=shift.opening_float_cents,
        counted_cash_cents=shift.counted_cash_cents,
        over_short_cents=shift.over_short_cents,
    )
    sales = list(
        await session.scalars(
            select(Sale).where(
                Sale.shift_id == shift.id,
                Sale.status.in_([SaleStatus.COMPLETED.value, SaleStatus.VOIDED.value]),
            )
        )
    )
    sale_ids = [s.id for s in sales]
    for sale in sales:
        if sale.kind == "return":
            report.returns_count += 1
            report.returns_cents += sale.total_cents
            report.returns_tax_cents += sale.tax_cents
        elif sale.status == SaleStatus.VOIDED.value:
            report.voids_count += 1
            report.voids_cents += sale.total_cents
        else:
            report.sales_count += 1
            report.gross_sales_cents += sale.subtotal_cents
            report.discounts_cents += sale.discount_cents
            report.tax_cents += sale.tax_cents
            report.deposits_cents += sale.deposit_cents
            report.net_sales_cents += sale.total_cents
    # Returns and voids reduce net sales; their tax comes back too.
    counted = {s.id for s in sales if s.kind == "sale" and s.status == SaleStatus.COMPLETED.value}
    report.net_sales_cents -= report.returns_cents
    # Tax by class is net of returns, like the net tax it adds up to.
    report.net_tax_cents = report.tax_cents - report.returns_tax_cents
    if sale_ids:
        rows = await session.execute(
            select(SaleLine.tax_class, Sale.kind, func.sum(SaleLine.tax_cents))
            .join(Sale, Sale.id == SaleLine.sale_id)
            .where(Sale.id.in_(sale_ids), Sale.status == SaleStatus.COMPLETED.value)
            .group_by(SaleLine.tax_class, Sale.kind)
        )
        for tax_class, sale_kind, amount in rows:
            sign = -1 if sale_kind == "return" else 1
            report.tax_by_class[tax_class] = report.tax_by_class.get(tax_class, 0) + sign * int(amount or 0)
        restricted = await session.scalar(
            select(func.count(func.distinct(SaleLine.sale_id))).where(
                SaleLine.sale_id.in_(counted or {-1}), SaleLine.age_restricted.is_(True)
            )
        )
        report.age_restricted_sales = int(restricted or 0)
        payments = await session.execute(
            select(Payment.tender, Payment.kind, Payment.status, Payment.amount_cents, Payment.captured_cents)
            .where(Payment.sale_id.in_(sale_ids))
        )  # fmt: skip
        for tender, payment_kind, status, amount, captured in payments:
            if payment_kind == "refund":
                if status in ("refunded", "captured"):
                    report.tenders[tender] = report.tenders.get(tender, 0) - amount
            elif status in ("captured", "refunded", "partially_refunded"):
                report.tenders[tender] = report.tenders.get(tender, 0) + (captured or amount)
        checks = await session.execute(
            select(ComplianceEvent.result, func.count())
            .where(ComplianceEvent.sale_id.in_(sale_ids))
            .group_by(ComplianceEvent.result)
        )
        report.id_checks = {result: int(count) for result, count in checks}
    movements = await session.execute(
        select(CashMovement.kind, func.count(), func.sum(CashMovement.amount_cents))
        .where(CashMovement.shift_id == shift.id)
        .group_by(CashMovement.kind)
    )
    for movement_kind, count, amount in movements:
        if movement_kind == "paid_in":
            report.paid_in_cents = int(amount or 0)
        elif movement_kind == "paid_out":
            report.paid_out_cents = int(amount or 0)
        else:
            report.no_sale_count = int(count)
    report.expected_cash_cents = (
        report.opening_float_cents + report.tenders.get("cash", 0) + report.paid_in_cents - report.paid_out_cents
    )
    return report


def to_csv(report: ShiftReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["field", "value"])
    for key, value in report.as_dict().items():
        if isinstance(value, dict):
            for sub, amount in sorted(value.items()):
                writer.writerow([f"{key}.{sub}", amount])
        else:
            writer.writerow([key, "" if value is None else value])
    return out.getvalue()


def _row(label: str, value: str) -> str:
    return f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>"


def to_html(report: ShiftReport, store_name: str) -> str:
    money = format_cents
    rows = [
        _row("Business date", report.business_date),
        _row("Sales", f"{report.sales_count}  {money(report.gross_sales_cents)}"),
        _row("Discounts", money(report.discounts_cents)),
        _row("Tax on sales", money(report.tax_cents)),
        _row("Deposits", money(report.deposits_cents)),
        _row("Returns", f"{report.returns_count}  {money(report.returns_cents)}"),
        _row("Tax on returns", money(report.returns_tax_cents)),
        _row("Net tax", money(report.net_tax_cents)),
        *[_row(f"  net tax {name}", money(amount)) for name, amount in sorted(report.tax_by_class.items())],
        _row("Voids", f"{report.voids_count}  {money(report.voids_cents)}"),
        _row("Net sales", money(report.net_sales_cents)),
        *[_row(f"Tender {name}", money(amount)) for name, amount in sorted(report.tenders.items())],
        _row("Age-restricted sales", str(report.age_restricted_sales)),
        *[_row(f"ID checks {name}", str(count)) for name, count in sorted(report.id_checks.items())],
        _row("Opening float", money(report.opening_float_cents)),
        _row("Paid in / out", f"{money(report.paid_in_cents)} / {money(report.paid_out_cents)}"),
        _row("No-sale opens", str(report.no_sale_count)),
        _row("Expected cash", money(report.expected_cash_cents)),
    ]
    if report.counted_cash_cents is not None:
        rows.append(_row("Counted cash", money(report.counted_cash_cents)))
        rows.append(_row("Over / short", money(report.over_short_cents or 0)))
    if report.audit_chain_head:
        rows.append(_row("Audit chain", report.audit_chain_head))
    title = f"{report.kind} report — shift {report.shift_id}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/receipt.css"></head>'
        f'<body class="receipt"><h1>{escape(store_name)}</h1><h2>{escape(title)}</h2>'
        f"<table>{''.join(rows)}</table></body></html>"
    )
