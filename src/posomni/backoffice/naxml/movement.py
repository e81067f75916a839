"""One business day of one store, totalled per item and per department: what the ISM and MCM reports say.

Counted: sales and returns whose status is `completed` and whose business date is the day. Voided sales (and
sales still open, suspended, completing or cancelled) are left out. A return counts on its own business date,
as a refund, whatever the date of the sale it returns.

Amounts are integer cents, before tax and without bottle deposits:

- sales amount: price × quantity − discounts (manual and promotion), of the sales;
- discount amount: the manual part (line discounts, the manager's sale discount spread on the lines); the
  promotion amount: the mix & match part — each with the number of sale lines that carried one;
- refund amount: price × quantity − discounts given back, of the returns; refund count: the units returned;
- transaction count: the sales (not returns) that had the item, or the department.

An item is a product; it is reported under the barcode it was sold with (the smallest one when several),
else its first barcode, else its SKU as a PLU. Its department is the product's category today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posomni.catalog.models import Barcode, Category, Product
from posomni.sales.models import Sale, SaleKind, SaleLine, SaleStatus


@dataclass
class Totals:
    sales_quantity: int = 0
    sales_cents: int = 0
    discount_cents: int = 0
    discount_count: int = 0
    promotion_cents: int = 0
    promotion_count: int = 0
    refund_cents: int = 0
    refund_count: int = 0
    # Sale ids, counted as the transaction count.
    sales: set[int] = field(default_factory=set)

    @property
    def transaction_count(self) -> int:
        return len(self.sales)


@dataclass
class ItemMovement:
    product_id: int
    sku: str
    description: str
    category_code: str
    selling_units: int
    gtin: str | None
    # Effective unit price in cents (the override when there was one) → totals at that price.
    prices: dict[int, Totals] = field(default_factory=dict)


@dataclass
class DepartmentMovement:
    category_code: str
    name: str
    totals: Totals = field(default_factory=Totals)


@dataclass
class DayMovement:
    store_code: str
    business_date: date
    items: list[ItemMovement]
    departments: list[DepartmentMovement]


@dataclass(frozen=True)
class _Line:
    sale_id: int
    kind: str
    product_id: int
    gtin: str | None
    quantity: int
    price_cents: int
    discount_cents: int
    promotion_cents: int


def _add(totals: Totals, line: _Line) -> None:
    net = line.price_cents * line.quantity - line.discount_cents
    if line.kind == SaleKind.RETURN.value:
        totals.refund_cents += net
        totals.refund_count += line.quantity
        return
    manual = line.discount_cents - line.promotion_cents
    totals.sales_quantity += line.quantity
    totals.sales_cents += net
    totals.discount_cents += manual
    totals.discount_count += 1 if manual > 0 else 0
    totals.promotion_cents += line.promotion_cents
    totals.promotion_count += 1 if line.promotion_cents > 0 else 0
    totals.sales.add(line.sale_id)


_COLUMNS = (
    Sale.id, Sale.kind, SaleLine.product_id, SaleLine.gtin, SaleLine.quantity, SaleLine.unit_price_cents,
    SaleLine.override_price_cents, SaleLine.discount_cents, SaleLine.promotion_discount_cents,
)  # fmt: skip


async def _lines(session: AsyncSession, store_id: int, business_date: date) -> list[_Line]:
    rows = await session.execute(
        select(*_COLUMNS)
        .join(SaleLine, SaleLine.sale_id == Sale.id)
        .where(
            Sale.store_id == store_id,
            Sale.business_date == business_date,
            Sale.status == SaleStatus.COMPLETED.value,
        )
        .order_by(Sale.id, SaleLine.line_no)
    )
    return [
        _Line(sale_id, kind, product_id, gtin, quantity, unit if override is None else override, discount, promotion)
        for sale_id, kind, product_id, gtin, quantity, unit, override, discount, promotion in rows
    ]


async def day_movement(session: AsyncSession, store_id: int, store_code: str, business_date: date) -> DayMovement:
    lines = await _lines(session, store_id, business_date)
    product_ids = sorted({line.product_id for line in lines})
    products = {p.id: p for p in await session.scalars(select(Product).where(Product.id.in_(product_ids)))}
    categories = {c.id: c for c in await session.scalars(select(Category))}
    first_barcode: dict[int, str] = {}
    for gtin, product_id in await session.execute(
        select(Barcode.gtin, Barcode.product_id).where(Barcode.product_id.in_(product_ids)).order_by(Barcode.gtin)
    ):
        first_barcode.setdefault(product_id, gtin)
    items: dict[int, ItemMovement] = {}
    departments: dict[str, DepartmentMovement] = {}
    for line in lines:
        product = products[line.product_id]
        category = categories[product.category_id]
        item = items.get(product.id)
        if item is None:
            item = items[product.id] = ItemMovement(
                product.id, product.sku, product.name, category.code, product.units_per_pack, None
            )
        if line.gtin is not None and (item.gtin is None or line.gtin < item.gtin):
            item.gtin = line.gtin
        _add(item.prices.setdefault(line.price_cents, Totals()), line)
        department = departments.setdefault(category.code, DepartmentMovement(category.code, category.name))
        _add(department.totals, line)
    for item in items.values():
        item.gtin = item.gtin or first_barcode.get(item.product_id)
    return DayMovement(
        store_code=store_code,
        business_date=business_date,
        items=list(items.values()),
        departments=list(departments.values()),
    )
