"""`price_sale`: a sale's lines and totals, as a pure function of its input.

Order of work, each step on what the previous one left:

1. gross per line = quantity × price per sellable unit (the manager override when there is one);
2. promotions (see `promotions`), each promotion's saving spread over the lines it used; of the possible
   orders, the one leaving the lowest sum of line amounts after step 3 wins: the customer's price before
   the sale-level discount (which never turns a lower amount into a higher one) and before tax (left out
   because rates differ by class);
3. the line's own manual discount: cents off the line, or a rate of what promotions left;
4. the sale-level manual discount: cents or a rate of the sale's remaining amount, spread over lines in
   proportion to what is left on each;
5. tax per tax class on the sum of the class's net amounts (plus deposits when they are taxable), rounded
   once half-up, then shared over the lines for reporting;
6. deposits: per base unit, never discounted.

Every spread uses `allocate` (largest remainder), so shares add up exactly and none exceeds its base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from posomni.kit.money import percent_of
from posomni.sales.pricing.allocation import allocate
from posomni.sales.pricing.inputs import AmountOff, ManualDiscount, SaleInput
from posomni.sales.pricing.promotions import PromotionSet, build_rules, choose_sets
from posomni.sales.pricing.results import AppliedPromotion, LineShare, PricedLine, PricedSale, TaxTotal


def _discount(discount: ManualDiscount | None, base_cents: int) -> int:
    if discount is None:
        return 0
    if isinstance(discount, AmountOff):
        # A manager's amount larger than what is left is capped, never turned into a negative price.
        return min(discount.cents, base_cents)
    return percent_of(base_cents, discount.rate)


@dataclass(slots=True)
class _Tally:
    description: str
    amount: int = 0
    units: dict[int, int] = field(default_factory=dict)
    discounts: dict[int, int] = field(default_factory=dict)


def _promotion_discounts(
    sets: Sequence[PromotionSet], prices: Sequence[int], line_ids: Sequence[int]
) -> tuple[list[int], tuple[AppliedPromotion, ...]]:
    per_line = [0] * len(prices)
    tallies: dict[str, _Tally] = {}
    for promotion_set in sets:
        rule = promotion_set.rule
        tally = tallies.setdefault(rule.promotion_id, _Tally(rule.description))
        tally.amount += promotion_set.saving_cents * promotion_set.times
        for i, units, discount in promotion_set.shares(prices):
            tally.units[i] = tally.units.get(i, 0) + units
            tally.discounts[i] = tally.discounts.get(i, 0) + discount
            per_line[i] += discount
    applied = tuple(
        AppliedPromotion(
            promotion_id=promotion_id,
            description=tally.description,
            amount_cents=tally.amount,
            shares=tuple(
                LineShare(line_id=line_ids[i], units=tally.units[i], discount_cents=tally.discounts[i])
                for i in sorted(tally.units)
            ),
        )
        for promotion_id, tally in sorted(tallies.items())
    )
    return per_line, applied


def price_sale(sale: SaleInput) -> PricedSale:
    lines = sale.lines
    prices = [line.price_cents for line in lines]
    gross = [line.quantity * price for line, price in zip(lines, prices, strict=True)]
    deposits = [line.base_units * line.deposit_per_unit_cents for line in lines]

    def left_to_pay(candidate: Sequence[PromotionSet]) -> int:
        left = list(gross)
        for promotion_set in candidate:
            for i, _, discount in promotion_set.shares(prices):
                left[i] -= discount
        return sum(rest - _discount(ln.manual_discount, rest) for ln, rest in zip(lines, left, strict=True))

    sets = choose_sets(build_rules(sale), [line.quantity for line in lines], prices, left_to_pay)
    promotion, applied = _promotion_discounts(sets, prices, [line.line_id for line in lines])

    after_promotions = [g - p for g, p in zip(gross, promotion, strict=True)]
    manual = [_discount(ln.manual_discount, rest) for ln, rest in zip(lines, after_promotions, strict=True)]
    after_manual = [left - m for left, m in zip(after_promotions, manual, strict=True)]

    sale_discount = _discount(sale.sale_discount, sum(after_manual))
    sale_shares = allocate(sale_discount, after_manual)
    net = [left - share for left, share in zip(after_manual, sale_shares, strict=True)]

    line_tax = [0] * len(lines)
    taxes: list[TaxTotal] = []
    for tax_class in sorted({line.tax_class for line in lines}):
        members = [i for i, line in enumerate(lines) if line.tax_class == tax_class]
        bases = [net[i] + (deposits[i] if sale.deposits_taxable else 0) for i in members]
        rate = sale.tax_rates[tax_class]
        # Florida: tax on the transaction, carried to the third decimal and rounded half-up, once per class.
        class_tax = percent_of(sum(bases), rate)
        for i, share in zip(members, allocate(class_tax, bases), strict=True):
            line_tax[i] = share
        taxes.append(TaxTotal(tax_class=tax_class, rate=rate, taxable_cents=sum(bases), tax_cents=class_tax))

    priced_lines = tuple(
        PricedLine(
            line_id=line.line_id,
            product_id=line.product_id,
            quantity=line.quantity,
            base_units=line.base_units,
            unit_price_cents=line.unit_price_cents,
            override_price_cents=line.override_price_cents,
            tax_class=line.tax_class,
            gross_cents=gross[i],
            promotion_discount_cents=promotion[i],
            manual_discount_cents=manual[i],
            sale_discount_cents=sale_shares[i],
            net_cents=net[i],
            tax_cents=line_tax[i],
            deposit_cents=deposits[i],
        )
        for i, line in enumerate(lines)
    )
    subtotal = sum(gross)
    promotion_total = sum(promotion)
    manual_total = sum(manual) + sale_discount
    tax_total = sum(t.tax_cents for t in taxes)
    deposit_total = sum(deposits)
    discount_total = promotion_total + manual_total
    return PricedSale(
        lines=priced_lines,
        promotions=applied,
        taxes=tuple(taxes),
        subtotal_cents=subtotal,
        promotion_discount_cents=promotion_total,
        manual_discount_cents=manual_total,
        discount_cents=discount_total,
        tax_cents=tax_total,
        deposit_cents=deposit_total,
        total_cents=subtotal - discount_total + tax_total + deposit_total,
    )
