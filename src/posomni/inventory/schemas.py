"""Inventory API shapes. Quantities are base units unless a field says otherwise; amounts are cents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

Units = Annotated[int, Field(ge=1, le=1_000_000)]
Cents = Annotated[int, Field(ge=0, le=10_000_000)]
# Every id column is a 64-bit integer: anything larger is refused here rather than by the database driver.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class LevelOut(BaseModel):
    product_id: int
    stock_product_id: int
    units_per_pack: int
    on_hand: int
    reserved: int
    available: int
    # Whole packs of `product_id` the available base units make.
    available_packs: int
    reorder_point: int
    reorder_quantity: int


class ReorderIn(BaseModel):
    store_id: Id | None = None
    reorder_point: int = Field(ge=0, le=1_000_000)
    reorder_quantity: int = Field(ge=0, le=1_000_000)


class AdjustmentIn(BaseModel):
    store_id: Id | None = None
    # A pack's quantity counts packs: 2 damaged 6-packs remove 12 units.
    product_id: Id
    # Signed: +3 found, -2 missing. Damage is always negative.
    quantity: int = Field(ge=-1_000_000, le=1_000_000)
    reason: Literal["adjust", "damage"]
    note: str = Field(min_length=1, max_length=500)


class TransferLineIn(BaseModel):
    product_id: Id
    quantity: Units


class TransferIn(BaseModel):
    # The sending store: your own when your account belongs to one.
    from_store_id: Id | None = None
    to_store_id: Id
    lines: list[TransferLineIn] = Field(min_length=1, max_length=1000)
    note: str = Field(default="", max_length=400)


class TransferOut(BaseModel):
    reference: str


class ReceiveLineIn(BaseModel):
    product_id: Id | None = None
    # Or the barcode scanned off the case.
    barcode: str | None = Field(default=None, max_length=32)
    # Invoiced units of that product: cases for a case.
    quantity: Units
    # Cents per invoiced unit; omit to keep the product's cost.
    cost_cents: Cents | None = None

    @model_validator(mode="after")
    def _one_product(self) -> ReceiveLineIn:
        if (self.product_id is None) == (self.barcode is None):
            raise ValueError("give product_id or barcode")
        return self


class ReceiveIn(BaseModel):
    store_id: Id | None = None
    supplier: str = Field(min_length=1, max_length=100)
    invoice_number: str = Field(min_length=1, max_length=64)
    received_at: AwareDatetime | None = None
    note: str = Field(default="", max_length=500)
    update_costs: bool = True
    lines: list[ReceiveLineIn] = Field(min_length=1, max_length=1000)


class InvoiceLineOut(BaseModel):
    product_id: int
    quantity: int
    units_per_pack: int
    stock_product_id: int
    base_units: int
    cost_cents: int | None
    unit_cost_cents: int | None


class InvoiceOut(BaseModel):
    id: int
    store_id: int
    supplier: str
    invoice_number: str
    received_at: datetime
    received_by: int | None
    note: str
    total_cost_cents: int
    lines: list[InvoiceLineOut]


class CountStartIn(BaseModel):
    store_id: Id | None = None
    product_ids: list[Id] | None = Field(default=None, max_length=100_000)
    category_id: Id | None = None
    note: str = Field(default="", max_length=500)


class CountEntryIn(BaseModel):
    product_id: Id
    counted: int = Field(ge=0, le=1_000_000)


class CountEntriesIn(BaseModel):
    entries: list[CountEntryIn] = Field(min_length=1, max_length=10_000)


class CountLineOut(BaseModel):
    product_id: int
    sku: str
    name: str
    expected: int
    expected_at_count: int | None
    counted: int | None
    variance: int | None
    unit_cost_cents: int
    variance_cost_cents: int | None


class CountOut(BaseModel):
    id: int
    store_id: int
    status: str
    note: str
    started_at: datetime
    closed_at: datetime | None
    counted_lines: int
    uncounted_lines: int
    units_over: int
    units_short: int
    net_units: int
    cost_over_cents: int
    cost_short_cents: int
    net_cost_cents: int
    lines: list[CountLineOut]


class LowStockOut(BaseModel):
    product_id: int
    sku: str
    name: str
    size: str
    on_hand: int
    reserved: int
    available: int
    reorder_point: int
    reorder_quantity: int
    suggested_units: int
    case_size: int | None
    suggested_cases: int | None
    unit_cost_cents: int


class MovementOut(BaseModel):
    id: int
    product_id: int
    quantity: int
    reason: str
    reference: str
    note: str
    actor_id: int | None
    created_at: datetime


class LedgerMismatchOut(BaseModel):
    product_id: int
    on_hand: int
    ledger: int


class LedgerOut(BaseModel):
    store_id: int
    ok: bool
    mismatches: list[LedgerMismatchOut]
