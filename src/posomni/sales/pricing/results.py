"""What the pricing engine returns. Every amount is integer cents.

Invariants (checked by the property tests): each line's net = gross − discounts ≥ 0; each discount is at
most what it discounts; the shares of a promotion, of the sale discount and of a tax class add up exactly to
it; and total = subtotal − discounts + tax + deposits.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PricedLine:
    line_id: int
    product_id: int
    quantity: int
    # quantity × units_per_pack: what leaves stock.
    base_units: int
    unit_price_cents: int
    override_price_cents: int | None
    tax_class: str
    # quantity × the price charged per unit (the override when there is one).
    gross_cents: int
    promotion_discount_cents: int
    manual_discount_cents: int
    # This line's share of the sale-level manager discount.
    sale_discount_cents: int
    net_cents: int
    # This line's share of its tax class's tax, for reporting; tax itself is computed per class.
    tax_cents: int
    # Refundable container deposit: never discounted, and taxed only when the sale says so.
    deposit_cents: int

    @property
    def discount_cents(self) -> int:
        return self.promotion_discount_cents + self.manual_discount_cents + self.sale_discount_cents

    @property
    def total_cents(self) -> int:
        return self.net_cents + self.tax_cents + self.deposit_cents


@dataclass(frozen=True, slots=True)
class LineShare:
    line_id: int
    # Sellable units of the line the promotion used; no unit is used by two promotions.
    units: int
    discount_cents: int


@dataclass(frozen=True, slots=True)
class AppliedPromotion:
    promotion_id: str
    description: str
    amount_cents: int
    # In sale line order; the discounts add up to `amount_cents`.
    shares: tuple[LineShare, ...]

    @property
    def units(self) -> int:
        return sum(share.units for share in self.shares)


@dataclass(frozen=True, slots=True)
class TaxTotal:
    tax_class: str
    rate: Decimal
    taxable_cents: int
    # Rounded once, half-up, on the class's taxable amount for the whole sale (Florida rule).
    tax_cents: int


@dataclass(frozen=True, slots=True)
class PricedSale:
    lines: tuple[PricedLine, ...]
    # Ordered by promotion id.
    promotions: tuple[AppliedPromotion, ...]
    # One per tax class present in the sale, ordered by class name.
    taxes: tuple[TaxTotal, ...]
    subtotal_cents: int
    promotion_discount_cents: int
    # Line-level manual discounts plus the sale-level discount.
    manual_discount_cents: int
    discount_cents: int
    tax_cents: int
    deposit_cents: int
    total_cents: int
