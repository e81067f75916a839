"""Choosing which items each promotion discounts.

Every promotion (mix & match, or a case price) becomes a rule: a set size, the lines whose items may join a
set, and how a set is priced. An item joins at most one set, so it is discounted by at most one promotion,
and it counts towards that promotion's quantity only.

How sets are chosen, deterministically:

* A promotion, in its turn, builds sets from the most expensive remaining items of its group (the set that
  saves most) and stops at the first set that would save nothing. "All once reached" takes every remaining
  item of its group as one set.
* Promotions that share no line cannot compete and are settled independently. Among promotions that do,
  every order is tried (up to `MAX_COMPETING_FOR_ALL_ORDERS` of them) and the order that leaves the customer
  the lowest price wins, as measured by the caller's `cost` (the engine counts what is left on the lines
  after their manual discounts, so a saving swallowed by a line already discounted to nothing counts for
  nothing); on a tie, the order that comes first with promotions sorted by id. A larger tangle (not seen in
  a real store) is applied in one order: by the cost each promotion leaves on its own, lowest first, then id.
* Lines with a manager price override take part in no promotion.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeAlias

from posomni.kit.money import format_cents, percent_of
from posomni.sales.pricing.allocation import allocate
from posomni.sales.pricing.inputs import CaseDeal, QuantityForPrice, SaleInput, SetMode, case_promotion_id

# 6! = 720 orders, each a few passes over the lines: about a millisecond per order for a 200-line basket.
MAX_COMPETING_FOR_ALL_ORDERS: Final = 6


@dataclass(frozen=True, slots=True)
class Rule:
    promotion_id: str
    description: str
    # Indexes of the sale lines whose items may join a set: most expensive first, then in sale order.
    eligible: tuple[int, ...]
    set_size: int
    take_all: bool = False
    # Either a complete set costs this much together ("2 for $30", a case price) ...
    set_price_cents: int | None = None
    # ... or this fraction comes off the set's regular price.
    rate: Decimal = Decimal(0)

    def saving(self, regular_cents: int) -> int:
        if self.set_price_cents is not None:
            return regular_cents - self.set_price_cents
        return percent_of(regular_cents, self.rate)


@dataclass(frozen=True, slots=True)
class PromotionSet:
    rule: Rule
    # (line index, sellable units) per set.
    units: tuple[tuple[int, int], ...]
    regular_cents: int
    saving_cents: int
    # Identical sets taken at once (many units of one line); totals are `times` × the per-set figures.
    times: int = 1

    def shares(self, prices: Sequence[int]) -> list[tuple[int, int, int]]:
        """(line index, units, discount cents) for all `times` sets together.

        Each set's saving is spread over its own items in proportion to their regular price.
        """
        split = allocate(self.saving_cents, [prices[i] * count for i, count in self.units])
        n = self.times
        return [(i, count * n, share * n) for (i, count), share in zip(self.units, split, strict=True)]


# What the customer would pay, in cents, if exactly these sets were taken: lower is better.
Cost: TypeAlias = Callable[[Sequence[PromotionSet]], int]


def build_rules(sale: SaleInput) -> list[Rule]:
    lines = sale.lines
    by_price = sorted(range(len(lines)), key=lambda i: (-lines[i].price_cents, i))
    open_lines = [i for i in by_price if lines[i].override_price_cents is None]
    rules: list[Rule] = []
    for promotion in sale.promotions:
        eligible = tuple(i for i in open_lines if promotion.group_id in lines[i].mix_match_groups)
        if isinstance(promotion, QuantityForPrice):
            rule = Rule(
                promotion.promotion_id,
                promotion.description,
                eligible,
                promotion.quantity,
                set_price_cents=promotion.price_cents,
            )
        else:
            rule = Rule(
                promotion.promotion_id,
                promotion.description,
                eligible,
                promotion.quantity,
                take_all=promotion.mode is SetMode.ALL_ONCE_REACHED,
                rate=promotion.rate,
            )
        rules.append(rule)
    by_deal: dict[CaseDeal, list[int]] = {}
    for i in open_lines:
        deal = lines[i].case_deal
        if deal is not None:
            by_deal.setdefault(deal, []).append(i)
    for deal, eligible_lines in by_deal.items():
        description = f"Case price: {deal.case_size} for {format_cents(deal.case_price_cents)}"
        rules.append(
            Rule(
                case_promotion_id(deal.base_product_id),
                description,
                tuple(eligible_lines),
                deal.case_size,
                set_price_cents=deal.case_price_cents,
            )
        )
    return rules


def choose_sets(
    rules: Sequence[Rule],
    units: Sequence[int],
    prices: Sequence[int],
    cost: Cost,
) -> list[PromotionSet]:
    """The sets every promotion gets; `units` (sellable units) and `prices` (cents) are indexed by line."""
    remaining = list(units)
    chosen: list[PromotionSet] = []
    for competing in _competing_groups(rules):
        order = _best_order(competing, remaining, prices, cost)
        chosen.extend(_apply(order, remaining, prices))
    return chosen


def _competing_groups(rules: Iterable[Rule]) -> list[list[Rule]]:
    groups: list[tuple[set[int], list[Rule]]] = []
    for rule in sorted(rules, key=lambda r: r.promotion_id):
        if not rule.eligible:
            continue
        lines, members = set(rule.eligible), [rule]
        apart: list[tuple[set[int], list[Rule]]] = []
        for group_lines, group_rules in groups:
            if group_lines & lines:
                lines |= group_lines
                members += group_rules
            else:
                apart.append((group_lines, group_rules))
        groups = [*apart, (lines, members)]
    return [sorted(members, key=lambda r: r.promotion_id) for _, members in groups]


def _best_order(
    rules: list[Rule],
    remaining: Sequence[int],
    prices: Sequence[int],
    cost: Cost,
) -> Sequence[Rule]:
    if len(rules) == 1:
        return rules
    if len(rules) > MAX_COMPETING_FOR_ALL_ORDERS:
        alone = {r.promotion_id: cost(_apply([r], list(remaining), prices)) for r in rules}
        return sorted(rules, key=lambda r: (alone[r.promotion_id], r.promotion_id))
    best: Sequence[Rule] = rules
    best_cost: int | None = None
    # `rules` is sorted by id, so permutations come in that order and the first best one wins a tie.
    for order in itertools.permutations(rules):
        order_cost = cost(_apply(order, list(remaining), prices))
        if best_cost is None or order_cost < best_cost:
            best, best_cost = order, order_cost
    return best


def _apply(order: Iterable[Rule], remaining: list[int], prices: Sequence[int]) -> list[PromotionSet]:
    """Take each rule's sets in turn; `remaining` (units left per line) is updated in place."""
    taken: list[PromotionSet] = []
    for rule in order:
        taken.extend(_take_sets(rule, remaining, prices))
    return taken


def _take_sets(rule: Rule, remaining: list[int], prices: Sequence[int]) -> list[PromotionSet]:
    taken: list[PromotionSet] = []
    while True:
        available = sum(remaining[i] for i in rule.eligible)
        if available < rule.set_size:
            return taken
        wanted = available if rule.take_all else rule.set_size
        units: list[tuple[int, int]] = []
        for i in rule.eligible:
            count = min(remaining[i], wanted)
            if count:
                units.append((i, count))
                wanted -= count
            if not wanted:
                break
        regular = sum(prices[i] * count for i, count in units)
        saving = rule.saving(regular)
        # Items are sorted dearest first, so later sets are no dearer: the first set saving nothing ends it.
        if saving <= 0:
            return taken
        times = 1
        if len(units) == 1 and not rule.take_all:
            # A set from one line repeats unchanged while that line has units; take all repeats at once
            # instead of looping once per set on a 500-can line.
            times = remaining[units[0][0]] // units[0][1]
        for i, count in units:
            remaining[i] -= count * times
        taken.append(PromotionSet(rule, tuple(units), regular, saving, times))
        if rule.take_all:
            return taken
