from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_DRAWER_CENTS = 10_000_000


class ShiftOpen(BaseModel):
    register_id: int = Field(ge=1)
    opening_float_cents: int = Field(ge=0, le=MAX_DRAWER_CENTS)


class ManagerApproval(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    secret: str = Field(min_length=4, max_length=256, description="The manager's PIN or password")


class CashMovementIn(BaseModel):
    kind: Literal["paid_in", "paid_out"]
    amount_cents: int = Field(gt=0, le=MAX_DRAWER_CENTS)
    reason: str = Field(min_length=3, max_length=300)
    manager: ManagerApproval | None = None


class NoSaleIn(BaseModel):
    reason: str = Field(min_length=3, max_length=300)


class ShiftClose(BaseModel):
    counted_cash_cents: int = Field(ge=0, le=MAX_DRAWER_CENTS)


class ShiftOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    store_id: int
    register_id: int
    status: str
    business_date: date
    opened_by: int
    opened_at: datetime
    opening_float_cents: int
    closed_by: int | None
    closed_at: datetime | None
    expected_cash_cents: int | None
    counted_cash_cents: int | None
    over_short_cents: int | None


class CashMovementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    shift_id: int
    kind: str
    amount_cents: int
    reason: str
    actor_id: int
    approved_by: int | None
    created_at: datetime


class ShiftReportOut(BaseModel):
    kind: str
    shift_id: int
    store_id: int
    register_id: int
    business_date: str
    opened_at: str
    closed_at: str | None
    generated_at: str
    sales_count: int
    gross_sales_cents: int
    discounts_cents: int
    tax_cents: int
    deposits_cents: int
    net_sales_cents: int
    returns_count: int
    returns_cents: int
    returns_tax_cents: int
    net_tax_cents: int
    voids_count: int
    voids_cents: int
    tax_by_class: dict[str, int]
    tenders: dict[str, int]
    age_restricted_sales: int
    id_checks: dict[str, int]
    opening_float_cents: int
    paid_in_cents: int
    paid_out_cents: int
    no_sale_count: int
    expected_cash_cents: int
    counted_cash_cents: int | None
    over_short_cents: int | None
    audit_chain_head: str | None
