from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from posomni.shifts.schemas import ManagerApproval

if TYPE_CHECKING:
    from posomni.payments.models import Payment
    from posomni.sales.models import Sale

MAX_CENTS = 100_000_000


class SaleCreate(BaseModel):
    register_id: int | None = Field(default=None, ge=1)


class ItemAdd(BaseModel):
    code: str | None = Field(default=None, min_length=1, max_length=32, description="A scanned or typed barcode")
    product_id: int | None = Field(default=None, ge=1)
    quantity: int = Field(default=1, ge=1, le=999)

    @model_validator(mode="after")
    def one_of(self) -> ItemAdd:
        if (self.code is None) == (self.product_id is None):
            raise ValueError("give either code or product_id")
        return self


class QuantityChange(BaseModel):
    quantity: int = Field(ge=1, le=999)


class PriceOverride(BaseModel):
    price_cents: int = Field(ge=0, le=MAX_CENTS)
    reason: str = Field(min_length=3, max_length=300)
    manager: ManagerApproval | None = None


class DiscountIn(BaseModel):
    amount_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS)
    percent: Decimal | None = Field(default=None, gt=0, le=100, description="10 means 10 %")
    reason: str = Field(min_length=3, max_length=300)
    manager: ManagerApproval | None = None


class CustomerAttach(BaseModel):
    customer_id: int | None = Field(default=None, ge=1)


class TenderBody(BaseModel):
    kind: Literal["cash", "card", "loyalty"]
    amount_cents: int = Field(default=0, ge=0, le=MAX_CENTS, description="Card or points: the amount to pay")
    tendered_cents: int = Field(default=0, ge=0, le=MAX_CENTS, description="Cash: what the customer handed over")
    payment_method: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9_]+$")
    payment_id: int | None = Field(default=None, ge=1, description="A card payment already taken on the reader")


class CompleteIn(BaseModel):
    tenders: list[TenderBody] = Field(min_length=1, max_length=10)


class CardPaymentIn(BaseModel):
    amount_cents: int = Field(ge=1, le=MAX_CENTS)


class VoidIn(BaseModel):
    reason: str = Field(min_length=3, max_length=300)
    manager: ManagerApproval | None = None


class ReturnLineBody(BaseModel):
    original_line_id: int = Field(ge=1)
    quantity: int = Field(ge=1, le=999)
    restock: bool = True


class ReturnIn(BaseModel):
    receipt_number: str = Field(min_length=3, max_length=40)
    lines: list[ReturnLineBody] = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=3, max_length=300)
    register_id: int | None = Field(default=None, ge=1)


class LineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    line_no: int
    product_id: int
    gtin: str | None
    description: str
    quantity: int
    units_per_pack: int
    unit_price_cents: int
    override_price_cents: int | None
    promotion_discount_cents: int
    discount_cents: int
    tax_class: str
    tax_cents: int
    deposit_cents: int
    line_total_cents: int
    age_restricted: bool
    min_age: int | None
    returned_quantity: int


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    tender: str
    provider: str
    status: str
    amount_cents: int
    captured_cents: int
    refunded_cents: int
    tendered_cents: int
    change_cents: int
    card_brand: str | None
    card_last4: str | None
    failure_code: str | None
    failure_message: str | None


class SaleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    receipt_number: str
    kind: str
    status: str
    store_id: int
    register_id: int
    shift_id: int | None
    cashier_id: int
    customer_id: int | None
    original_sale_id: int | None
    business_date: date
    subtotal_cents: int
    discount_cents: int
    tax_cents: int
    deposit_cents: int
    total_cents: int
    change_cents: int
    age_verified: bool
    id_scanned: bool
    needs_id_check: bool
    checkout_step: str | None
    failure_code: str | None
    failure_message: str | None
    loyalty_points_earned: int
    loyalty_points_redeemed: int
    completed_at: datetime | None
    voided_at: datetime | None
    lines: list[LineOut]
    payments: list[PaymentOut] = []


class NoReceiptLine(BaseModel):
    code: str = Field(min_length=1, max_length=32, description="The item's barcode")
    quantity: int = Field(default=1, ge=1, le=999)
    restock: bool = True


class NoReceiptReturnIn(BaseModel):
    lines: list[NoReceiptLine] = Field(min_length=1, max_length=50)
    reason: str = Field(min_length=3, max_length=300)
    register_id: int | None = Field(default=None, ge=1)
    manager: ManagerApproval | None = None


def sale_view(sale: Sale, payments: Sequence[Payment]) -> SaleOut:
    """A sale with its lines (loaded) and its payments, as the API answers it."""
    return SaleOut.model_validate(
        {**{c: getattr(sale, c) for c in SaleOut.model_fields if hasattr(sale, c) and c not in ("lines", "payments")},
         "lines": sale.lines, "payments": [PaymentOut.model_validate(p) for p in payments],
         "needs_id_check": any(line.age_restricted for line in sale.lines) and not sale.age_verified},
    )  # fmt: skip
