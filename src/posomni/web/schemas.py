"""Shapes of the small JSON helpers the screens need beyond the domain APIs. Amounts are integer cents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel


class SaleHoursNow(BaseModel):
    allowed: bool
    # within_hours, previous_day_hours, outside_hours, no_sales_day, or invalid_settings
    reason: str


class CardMethod(BaseModel):
    name: str
    payment_method: str


class RegisterStatus(BaseModel):
    register_id: int
    register_code: str
    register_name: str
    store_id: int
    store_name: str
    # reader: a card-present reader is paired; methods: keyed test methods (development, simulated or
    # Stripe test mode); none: card tenders are not available on this register.
    card_mode: Literal["reader", "methods", "none"]
    card_reader_id: str | None
    card_methods: list[CardMethod]
    # Development and tests only: the screen may offer to simulate a tap on the reader.
    test_reader: bool
    sale_hours: SaleHoursNow
    point_value_cents: str


class ImportRowError(BaseModel):
    line: int
    sku: str
    field: str
    code: str
    message: str


class ImportReportOut(BaseModel):
    rows: int
    imported: bool
    dry_run: bool
    created: int
    updated: int
    unchanged: int
    skipped: int
    price_changes: int
    stock_changes: int
    # Every problem, at most MAX_SHOWN of them; `error_count` counts them all.
    errors: list[ImportRowError]
    error_count: int
    warnings: list[str]


class SalesBucket(BaseModel):
    # A business date (by day), a category name (by category) or "HH:00" store-local (by hour).
    key: str
    sales: int
    sales_cents: int
    returns: int
    returns_cents: int
    net_cents: int


class SalesReportOut(BaseModel):
    store_id: int
    date_from: date
    date_to: date
    by: Literal["day", "category", "hour"]
    buckets: list[SalesBucket]
    total_sales: int
    total_net_cents: int


class ShiftSummary(BaseModel):
    id: int
    register_id: int
    register_name: str
    status: str
    business_date: date
    opened_at: datetime
    closed_at: datetime | None
    opened_by: str
    closed_by: str | None
    opening_float_cents: int
    expected_cash_cents: int | None
    counted_cash_cents: int | None
    over_short_cents: int | None


class IdStatus(BaseModel):
    """Where a sale stands with proof of age today (what the checkout's compliance step will find)."""

    sale_id: int
    # None: no age-restricted line.
    required_min_age: int | None
    # A passing or overridden check of today covers the sale's minimum age.
    covered: bool
    covering_event_id: int | None
    # Someone in the purchase was found under age today: the sale cannot be tendered (void it).
    underage_refused: bool
