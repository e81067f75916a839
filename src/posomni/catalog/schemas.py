"""Catalog API shapes. Every amount is integer cents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from posomni.catalog.models import PromotionKind
from posomni.sales.pricing import SetMode

# Cents: up to $100,000.00 per item keeps every sum far inside a 32-bit column.
Cents = Annotated[int, Field(ge=0, le=10_000_000)]
# Every id column is a 64-bit integer: anything larger is refused here rather than by the database driver.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Slug = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
AttributeValue = Annotated[str, Field(max_length=100)] | int | bool


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 20:
        raise ValueError("at most 20 attributes")
    for key in value:
        if not 1 <= len(key) <= 32:
            raise ValueError("attribute names have 1 to 32 characters")
    return value


class ProductView(BaseModel):
    """A sellable product as the register sees it (`lookup`): no cost, everything needed to sell it.

    `units_per_pack` base units of `stock_product_id` leave the shelf per unit sold; for a base unit
    `base_product_id` is None and `stock_product_id` is its own id."""

    model_config = ConfigDict(frozen=True)

    id: int
    sku: str
    name: str
    brand: str
    size: str
    # Name and size, for the sale line and the receipt.
    description: str
    # The GTIN-14 scanned (or, for a product chosen by id, its first barcode).
    gtin: str | None
    barcode: str | None
    category_id: int
    price_cents: int
    units_per_pack: int
    base_product_id: int | None
    stock_product_id: int
    age_restricted: bool
    min_age: int | None
    tax_class: str
    deposit_class: str | None
    attributes: dict[str, Any]
    is_active: bool


class ProductCreate(BaseModel):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    name: str = Field(min_length=1, max_length=200)
    brand: str = Field(default="", max_length=100)
    size: str = Field(default="", max_length=40)
    category_id: Id
    # None: the category's default.
    tax_class: Slug | None = None
    age_restricted: bool | None = None
    min_age: int | None = Field(default=None, ge=0, le=99)
    deposit_class: Slug | None = None
    price_cents: Cents
    cost_cents: Cents = 0
    base_product_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    units_per_pack: int = Field(default=1, ge=1, le=10_000)
    # Vintage, season … of this one item: {"vintage": "2021"}.
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    barcodes: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=20)
    is_active: bool = True

    _attributes = field_validator("attributes")(_check_attributes)


class ProductUpdate(BaseModel):
    """Only the fields sent are changed; send null to clear min_age or deposit_class."""

    sku: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    brand: str | None = Field(default=None, max_length=100)
    size: str | None = Field(default=None, max_length=40)
    category_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    tax_class: Slug | None = None
    age_restricted: bool | None = None
    min_age: int | None = Field(default=None, ge=0, le=99)
    deposit_class: Slug | None = None
    price_cents: Cents | None = None
    # Why the price changed, kept in the price history.
    price_reason: str = Field(default="", max_length=200)
    cost_cents: Cents | None = None
    base_product_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    units_per_pack: int | None = Field(default=None, ge=1, le=10_000)
    attributes: dict[str, AttributeValue] | None = None
    is_active: bool | None = None

    _attributes = field_validator("attributes")(lambda v: v if v is None else _check_attributes(v))


class BarcodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)


class BarcodeOut(BaseModel):
    gtin: str
    display: str


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    brand: str
    size: str
    category_id: int
    tax_class: str
    age_restricted: bool
    min_age: int | None
    deposit_class: str | None
    price_cents: int
    # Only for roles that edit the catalog.
    cost_cents: int | None
    base_product_id: int | None
    units_per_pack: int
    attributes: dict[str, Any]
    is_active: bool
    barcodes: list[BarcodeOut]
    created_at: datetime
    updated_at: datetime


class ProductSummary(BaseModel):
    id: int
    sku: str
    name: str
    brand: str
    size: str
    price_cents: int
    units_per_pack: int
    base_product_id: int | None
    age_restricted: bool
    is_active: bool


class SearchPage(BaseModel):
    items: list[ProductSummary]
    # Pass as `offset` for the next page; None on the last page.
    next_offset: int | None


class PriceChangeOut(BaseModel):
    id: int
    product_id: int
    old_price_cents: int | None
    new_price_cents: int
    changed_by: int | None
    changed_at: datetime
    source: str
    reason: str


class CategoryCreate(BaseModel):
    code: Slug
    name: str = Field(min_length=1, max_length=100)
    age_restricted: bool = False
    min_age: int | None = Field(default=None, ge=0, le=99)
    tax_class: Slug = "standard"


class CategoryUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    age_restricted: bool | None = None
    min_age: int | None = Field(default=None, ge=0, le=99)
    tax_class: Slug | None = None


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    age_restricted: bool
    min_age: int | None
    tax_class: str


# --- mix & match ----------------------------------------------------------------------------------------


class GroupCreate(BaseModel):
    code: Code
    name: str = Field(min_length=1, max_length=100)
    product_ids: list[Id] = Field(default_factory=list, max_length=50_000)


class GroupMembers(BaseModel):
    add: list[Id] = Field(default_factory=list, max_length=50_000)
    remove: list[Id] = Field(default_factory=list, max_length=50_000)


class GroupOut(BaseModel):
    id: int
    code: str
    name: str
    product_ids: list[int]


class PromotionCreate(BaseModel):
    code: Code
    description: str = Field(min_length=1, max_length=200)
    kind: PromotionKind
    # None: every store.
    store_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    # quantity_for_price and percent_off_quantity: the group whose items count together.
    group_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    # case_price: the base product whose singles are priced by the case.
    product_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    # Items per set; for a case price, singles per case.
    quantity: int = Field(ge=1, le=1000)
    # quantity_for_price: what a set costs; case_price: what a case of singles costs.
    price_cents: Cents | None = None
    # percent_off_quantity: percent off (10 = 10 %, up to two decimals).
    percent_off: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=2)
    mode: SetMode | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    is_active: bool = True


class PromotionUpdate(BaseModel):
    description: str | None = Field(default=None, min_length=1, max_length=200)
    quantity: int | None = Field(default=None, ge=1, le=1000)
    price_cents: Cents | None = None
    percent_off: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=2)
    mode: SetMode | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    is_active: bool | None = None


class PromotionOut(BaseModel):
    id: int
    code: str
    description: str
    kind: str
    store_id: int | None
    group_id: int | None
    product_id: int | None
    quantity: int
    price_cents: int | None
    percent_off: Decimal | None
    mode: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    is_active: bool
