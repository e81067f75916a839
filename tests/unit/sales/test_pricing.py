from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posomni.kit.money import round_half_up
from posomni.sales.pricing import (
    AmountOff,
    CaseDeal,
    PercentOff,
    PercentOffQuantity,
    PricedSale,
    PricingError,
    QuantityForPrice,
    SaleInput,
    SaleLineInput,
    SetMode,
    UnknownTaxClass,
    allocate,
    price_sale,
)

RATES = {"standard": Decimal("0.07"), "exempt": Decimal("0")}


def item(line_id: int = 1, *, price: int = 1000, quantity: int = 1, **fields: Any) -> SaleLineInput:
    fields.setdefault("tax_class", "standard")
    return SaleLineInput(
        line_id=line_id,
        product_id=100 + line_id,
        quantity=quantity,
        unit_price_cents=price,
        **fields,
    )


def priced(*lines: SaleLineInput, rates: dict[str, Decimal] | None = None, **fields: Any) -> PricedSale:
    return price_sale(SaleInput(lines=lines, tax_rates=RATES if rates is None else rates, **fields))


WINE = frozenset({"wine"})
PAIR = frozenset({"pair"})
TWO_FOR_30 = QuantityForPrice("two-for-30", "2 for $30", "pair", quantity=2, price_cents=3000)
WINE_SIX = PercentOffQuantity("wine-six", "Any 6 wines 10% off", "wine", quantity=6, rate=Decimal("0.10"))


# --- tax --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "rate", "tax"),
    [(125, "0.07", 9), (1000, "0.075", 75), (107, "0.07", 7)],
)
def test_florida_tax_is_rounded_half_up_to_the_cent(price: int, rate: str, tax: int) -> None:
    sale = priced(item(price=price), rates={"standard": Decimal(rate)})

    assert sale.tax_cents == tax
    assert sale.total_cents == price + tax


def test_tax_is_computed_on_the_transaction_and_rounded_once_per_class() -> None:
    # Per line, 25¢ at 7 % is 1.75¢ → 2¢, three times 6¢; on the transaction 75¢ → 5.25¢ → 5¢.
    sale = priced(item(1, price=25), item(2, price=25), item(3, price=25))

    assert sale.tax_cents == 5
    assert [line.tax_cents for line in sale.lines] == [2, 2, 1]


def test_each_tax_class_is_rounded_on_its_own_total() -> None:
    rates = {"standard": Decimal("0.07"), "reduced": Decimal("0.02")}
    sale = priced(item(1, price=125), item(2, price=125, tax_class="reduced"), rates=rates)

    assert [(t.tax_class, t.taxable_cents, t.tax_cents) for t in sale.taxes] == [
        ("reduced", 125, 3),
        ("standard", 125, 9),
    ]
    assert sale.tax_cents == 12


def test_exempt_lines_pay_no_tax_but_are_reported_under_their_class() -> None:
    sale = priced(item(1, price=1000), item(2, price=1000, tax_class="exempt"))

    assert sale.tax_cents == 70
    assert sale.lines[1].tax_cents == 0
    assert [(t.tax_class, t.taxable_cents, t.tax_cents) for t in sale.taxes] == [
        ("exempt", 1000, 0),
        ("standard", 1000, 70),
    ]


def test_a_tax_class_without_a_rate_is_refused() -> None:
    with pytest.raises(UnknownTaxClass) as excinfo:
        priced(item(tax_class="luxury"))
    assert excinfo.value.code == "unknown_tax_class"


# --- packs and deposits -----------------------------------------------------------------------------------


def test_a_six_pack_is_one_sellable_unit_at_its_own_price() -> None:
    sale = priced(item(price=999, quantity=2, units_per_pack=6))
    line = sale.lines[0]

    assert line.gross_cents == 1998
    assert line.base_units == 12
    assert sale.tax_cents == 140  # 1998 × 7 % = 139.86


def test_deposits_are_separate_lines_of_money_never_taxed_or_discounted_by_default() -> None:
    sale = priced(
        item(price=999, quantity=2, units_per_pack=6, deposit_per_unit_cents=5),
        sale_discount=PercentOff(Decimal("0.10")),
    )
    line = sale.lines[0]

    assert line.deposit_cents == 60
    assert sale.deposit_cents == 60
    assert sale.discount_cents == 200  # 10 % of 1998, deposit left out
    assert sale.taxes[0].taxable_cents == 1798
    assert sale.tax_cents == 126  # 1798 × 7 % = 125.86
    assert sale.total_cents == 1998 - 200 + 126 + 60


def test_deposits_are_taxed_when_the_jurisdiction_taxes_them() -> None:
    six_pack = item(price=999, quantity=2, units_per_pack=6, deposit_per_unit_cents=5)
    sale = priced(six_pack, deposits_taxable=True)

    assert sale.taxes[0].taxable_cents == 1998 + 60
    assert sale.tax_cents == 144  # 2058 × 7 % = 144.06


# --- promotions alone -------------------------------------------------------------------------------------


def test_two_for_thirty_prices_each_complete_pair_and_leaves_the_odd_bottle_at_full_price() -> None:
    sale = priced(item(price=1799, quantity=3, mix_match_groups=PAIR), promotions=(TWO_FOR_30,))

    assert sale.promotion_discount_cents == 598
    [applied] = sale.promotions
    assert (applied.promotion_id, applied.description, applied.amount_cents, applied.units) == (
        "two-for-30",
        "2 for $30",
        598,
        2,
    )
    assert sale.lines[0].net_cents == 3000 + 1799


def test_two_for_thirty_pairs_the_dearest_bottles_and_splits_the_saving_by_price() -> None:
    sale = priced(
        item(1, price=2000, mix_match_groups=PAIR),
        item(2, price=1200, mix_match_groups=PAIR),
        item(3, price=1800, mix_match_groups=PAIR),
        promotions=(TWO_FOR_30,),
    )

    # 2000 + 1800 − 3000 = 800, shared 2000 : 1800 → 421.05 / 378.95 → 421 / 379 (largest remainder).
    assert [line.promotion_discount_cents for line in sale.lines] == [421, 0, 379]
    assert [(s.line_id, s.units, s.discount_cents) for s in sale.promotions[0].shares] == [
        (1, 1, 421),
        (3, 1, 379),
    ]


def test_a_multi_buy_price_above_the_regular_price_is_not_applied() -> None:
    sale = priced(item(price=1200, quantity=2, mix_match_groups=PAIR), promotions=(TWO_FOR_30,))

    assert sale.promotions == ()
    assert sale.subtotal_cents - sale.discount_cents == 2400


def test_percent_off_each_complete_set_leaves_the_seventh_bottle_at_full_price() -> None:
    sale = priced(item(price=1000, quantity=7, mix_match_groups=WINE), promotions=(WINE_SIX,))

    assert sale.promotion_discount_cents == 600
    assert sale.promotions[0].units == 6


def test_percent_off_all_once_reached_discounts_every_bottle_of_the_group() -> None:
    promotion = replace(WINE_SIX, mode=SetMode.ALL_ONCE_REACHED)
    sale = priced(item(price=1000, quantity=7, mix_match_groups=WINE), promotions=(promotion,))

    assert sale.promotion_discount_cents == 700
    assert sale.promotions[0].units == 7


@pytest.mark.parametrize("mode", list(SetMode))
def test_percent_off_needs_the_full_quantity(mode: SetMode) -> None:
    promotion = replace(WINE_SIX, mode=mode)
    sale = priced(item(price=1000, quantity=5, mix_match_groups=WINE), promotions=(promotion,))

    assert sale.promotions == ()


def test_percent_off_mixes_products_of_the_group() -> None:
    sale = priced(
        item(1, price=1500, quantity=2, mix_match_groups=WINE),
        item(2, price=900, quantity=4, mix_match_groups=WINE),
        item(3, price=5000, quantity=1),
        promotions=(WINE_SIX,),
    )

    assert sale.promotion_discount_cents == 660  # 10 % of 3000 + 3600
    assert [line.promotion_discount_cents for line in sale.lines] == [300, 360, 0]


def test_case_price_applies_to_twelve_of_thirteen_singles_scanned_on_two_lines() -> None:
    deal = CaseDeal(base_product_id=7, case_size=12, case_price_cents=2000)
    sale = priced(
        item(1, price=200, quantity=6, case_deal=deal),
        item(2, price=200, quantity=7, case_deal=deal),
    )

    assert sale.promotion_discount_cents == 400  # 12 × 200 − 2000; the 13th single at 200
    [applied] = sale.promotions
    assert applied.promotion_id == "case:7"
    assert applied.description == "Case price: 12 for $20.00"
    assert [(s.line_id, s.units, s.discount_cents) for s in applied.shares] == [(1, 6, 200), (2, 6, 200)]
    assert sale.subtotal_cents - sale.discount_cents == 2000 + 200


@pytest.mark.parametrize(("singles", "discount"), [(11, 0), (12, 400), (13, 400), (24, 800), (25, 800)])
def test_case_price_counts_only_full_cases(singles: int, discount: int) -> None:
    deal = CaseDeal(base_product_id=7, case_size=12, case_price_cents=2000)
    sale = priced(item(price=200, quantity=singles, case_deal=deal))

    assert sale.promotion_discount_cents == discount


def test_a_large_quantity_is_priced_in_whole_sets_without_a_set_by_set_loop() -> None:
    sale = priced(item(price=1799, quantity=10_001, mix_match_groups=PAIR), promotions=(TWO_FOR_30,))

    assert sale.promotion_discount_cents == 5000 * 598
    assert sale.promotions[0].units == 10_000


# --- promotions together ----------------------------------------------------------------------------------


def test_promotions_on_different_items_all_apply() -> None:
    deal = CaseDeal(base_product_id=9, case_size=12, case_price_cents=1500)
    sale = priced(
        item(1, price=1000, quantity=6, mix_match_groups=WINE),
        item(2, price=1799, quantity=2, mix_match_groups=PAIR),
        item(3, price=150, quantity=12, case_deal=deal),
        promotions=(WINE_SIX, TWO_FOR_30),
    )

    assert [(p.promotion_id, p.amount_cents) for p in sale.promotions] == [
        ("case:9", 300),
        ("two-for-30", 598),
        ("wine-six", 600),
    ]
    assert [line.promotion_discount_cents for line in sale.lines] == [600, 598, 300]


def test_an_item_in_two_groups_is_discounted_once_by_the_better_deal() -> None:
    sale = priced(
        item(price=2000, quantity=6, mix_match_groups=WINE | PAIR),
        promotions=(WINE_SIX, TWO_FOR_30),
    )

    # Pairs save 3 × 1000; 10 % of six saves 1200; both together would discount bottles twice.
    assert [(p.promotion_id, p.amount_cents, p.units) for p in sale.promotions] == [("two-for-30", 3000, 6)]
    assert sale.lines[0].promotion_discount_cents == 3000


def test_a_case_competing_with_mix_and_match_yields_to_the_bigger_saving() -> None:
    wine_case = CaseDeal(base_product_id=5, case_size=12, case_price_cents=11_000)
    sale = priced(
        item(price=1000, quantity=13, mix_match_groups=WINE, case_deal=wine_case),
        promotions=(WINE_SIX,),
    )

    # Case saves 1000 and leaves one bottle; two sets of six at 10 % save 1200.
    assert [(p.promotion_id, p.amount_cents) for p in sale.promotions] == [("wine-six", 1200)]

    cheaper_case = replace(wine_case, case_price_cents=10_000)
    sale = priced(
        item(price=1000, quantity=13, mix_match_groups=WINE, case_deal=cheaper_case),
        promotions=(WINE_SIX,),
    )
    assert [(p.promotion_id, p.amount_cents) for p in sale.promotions] == [("case:5", 2000)]


def test_all_once_reached_gives_way_when_pairs_save_more() -> None:
    every_wine = replace(WINE_SIX, mode=SetMode.ALL_ONCE_REACHED)
    sale = priced(
        item(1, price=2000, quantity=8, mix_match_groups=WINE | PAIR),
        item(2, price=2000, quantity=4, mix_match_groups=WINE),
        promotions=(every_wine, TWO_FOR_30),
    )

    # 10 % of all twelve saves 2400; four pairs save 4000 and leave four wines, too few for the 10 %.
    assert [(p.promotion_id, p.amount_cents) for p in sale.promotions] == [("two-for-30", 4000)]


def test_a_line_already_discounted_to_nothing_does_not_soak_up_a_promotion_others_could_use() -> None:
    sale = priced(
        item(1, price=2000, mix_match_groups=PAIR, manual_discount=AmountOff(2000)),  # damaged, given away
        item(2, price=2000, mix_match_groups=PAIR | WINE),
        item(3, price=1000, quantity=5, mix_match_groups=WINE),
        promotions=(WINE_SIX, TWO_FOR_30),
    )

    # The pair would "save" 1000, half of it on the free bottle; six wines at 10 % save the customer 700.
    assert [(p.promotion_id, p.amount_cents) for p in sale.promotions] == [("wine-six", 700)]
    assert [line.net_cents for line in sale.lines] == [0, 1800, 4500]


def test_equal_savings_go_to_the_promotion_with_the_smaller_id() -> None:
    first = replace(WINE_SIX, promotion_id="a-wine")
    second = replace(WINE_SIX, promotion_id="b-wine")
    for promotions in [(first, second), (second, first)]:
        sale = priced(item(price=1000, quantity=6, mix_match_groups=WINE), promotions=promotions)
        assert [p.promotion_id for p in sale.promotions] == ["a-wine"]


def test_many_competing_promotions_are_ordered_by_their_own_saving() -> None:
    offers = tuple(PercentOffQuantity(f"p{n}", f"{n}%", "wine", 1, n / Decimal(100)) for n in range(1, 9))
    sale = priced(item(price=1000, quantity=3, mix_match_groups=WINE), promotions=offers)

    assert [(p.promotion_id, p.amount_cents) for p in sale.promotions] == [("p8", 240)]


# --- manager override and manual discounts ----------------------------------------------------------------


def test_manager_override_replaces_the_price_and_opts_the_line_out_of_promotions() -> None:
    sale = priced(
        item(price=2000, quantity=2, override_price_cents=1500, mix_match_groups=PAIR),
        promotions=(TWO_FOR_30,),
    )
    line = sale.lines[0]

    assert (line.unit_price_cents, line.override_price_cents) == (2000, 1500)
    assert line.gross_cents == 3000
    assert line.discount_cents == 0
    assert sale.promotions == ()
    assert sale.tax_cents == 210


def test_manual_line_discount_in_cents_comes_off_the_line() -> None:
    sale = priced(item(price=1000, manual_discount=AmountOff(150)))

    assert sale.lines[0].manual_discount_cents == 150
    assert sale.lines[0].net_cents == 850
    assert sale.tax_cents == 60  # 850 × 7 % = 59.5


def test_manual_line_discount_larger_than_the_line_is_capped_at_the_line() -> None:
    sale = priced(item(price=1000, manual_discount=AmountOff(5000)), item(2, price=500))

    assert sale.lines[0].manual_discount_cents == 1000
    assert sale.lines[0].net_cents == 0
    assert sale.lines[0].tax_cents == 0
    assert sale.total_cents == 535


def test_manual_line_percent_applies_to_what_promotions_left() -> None:
    sale = priced(
        item(price=1799, quantity=3, mix_match_groups=PAIR, manual_discount=PercentOff(Decimal("0.10"))),
        promotions=(TWO_FOR_30,),
    )
    line = sale.lines[0]

    assert line.promotion_discount_cents == 598
    assert line.manual_discount_cents == 480  # 10 % of 4799 = 479.9
    assert line.net_cents == 5397 - 598 - 480


def test_sale_discount_in_cents_is_spread_over_lines_by_what_is_left_on_each() -> None:
    sale = priced(item(1, price=1000), item(2, price=2000, tax_class="exempt"), sale_discount=AmountOff(100))

    # 100 × 1000 / 3000 = 33.3 and 66.7 → 33 and 67.
    assert [line.sale_discount_cents for line in sale.lines] == [33, 67]
    assert sale.manual_discount_cents == 100
    assert sale.taxes[1].taxable_cents == 967
    assert sale.tax_cents == 68  # 967 × 7 % = 67.69


def test_sale_percent_discount_is_taken_on_the_whole_sale_after_line_discounts() -> None:
    sale = priced(
        item(1, price=1000, manual_discount=AmountOff(100)),
        item(2, price=555),
        sale_discount=PercentOff(Decimal("0.10")),
    )

    assert sale.manual_discount_cents == 100 + 146  # 10 % of 1455 = 145.5
    assert sum(line.sale_discount_cents for line in sale.lines) == 146


def test_sale_discount_larger_than_the_sale_is_capped_and_deposits_stay_due() -> None:
    sale = priced(item(price=1500, deposit_per_unit_cents=10), sale_discount=AmountOff(10_000))

    assert sale.discount_cents == 1500
    assert sale.tax_cents == 0
    assert sale.total_cents == 10


def test_a_sale_without_lines_costs_nothing() -> None:
    sale = priced(sale_discount=AmountOff(500))

    assert (sale.subtotal_cents, sale.discount_cents, sale.tax_cents, sale.total_cents) == (0, 0, 0, 0)


# --- allocation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "shares"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (5, [25, 25, 25], [2, 2, 1]),
        (800, [2000, 1800], [421, 379]),
        (7, [0, 10, 0], [0, 7, 0]),
        (0, [0, 0], [0, 0]),
    ],
)
def test_allocation_splits_by_largest_remainder_and_sums_exactly(
    total: int, weights: list[int], shares: list[int]
) -> None:
    assert allocate(total, weights) == shares


@pytest.mark.parametrize(("total", "weights"), [(1, [0, 0]), (-1, [1]), (1, [1, -1]), (3, [])])
def test_allocation_refuses_what_cannot_be_split(total: int, weights: list[int]) -> None:
    with pytest.raises(ValueError, match="allocate"):
        allocate(total, weights)


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=12))
def test_allocation_always_sums_exactly_and_never_exceeds_a_weight(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        return
    shares = allocate(total, weights)
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
    if total <= sum(weights):
        assert all(share <= weight for share, weight in zip(shares, weights, strict=True))


# --- refused input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: item(quantity=0),
        lambda: item(price=-1),
        lambda: item(quantity=True),
        lambda: item(units_per_pack=0),
        lambda: item(deposit_per_unit_cents=-5),
        lambda: item(override_price_cents=-1),
        lambda: AmountOff(0),
        lambda: PercentOff(0.1),  # type: ignore[arg-type]
        lambda: PercentOff(Decimal("1.5")),
        lambda: PercentOff(Decimal("0")),
        lambda: PercentOff(Decimal("NaN")),
        lambda: CaseDeal(base_product_id=1, case_size=0, case_price_cents=100),
        lambda: QuantityForPrice("p", "p", "g", quantity=0, price_cents=100),
        lambda: SaleInput(lines=(item(1), item(1)), tax_rates=RATES),
        lambda: SaleInput(lines=(item(),), tax_rates={"standard": 0.07}),  # type: ignore[dict-item]
        lambda: SaleInput(lines=(item(),), tax_rates={"standard": Decimal("-0.01")}),
        lambda: SaleInput(lines=(), tax_rates=RATES, promotions=(TWO_FOR_30, TWO_FOR_30)),
        lambda: SaleInput(
            lines=(
                item(1, case_deal=CaseDeal(base_product_id=1, case_size=12, case_price_cents=100)),
                item(2, case_deal=CaseDeal(base_product_id=1, case_size=24, case_price_cents=100)),
            ),
            tax_rates=RATES,
        ),
    ],
)
def test_nonsense_input_is_refused_with_a_pricing_error(build: Any) -> None:
    with pytest.raises(PricingError) as excinfo:
        build()
    assert excinfo.value.code == "invalid_pricing_input"
    assert excinfo.value.status_code == 422


# --- invariants over random sales -------------------------------------------------------------------------

TAX_RATES = {"standard": Decimal("0.07"), "reduced": Decimal("0.015"), "exempt": Decimal("0")}
GROUPS = ["wine", "beer", "spirits"]

manual_discounts = (
    st.none()
    | st.builds(AmountOff, st.integers(1, 3000))
    | st.builds(PercentOff, st.decimals(min_value="0.01", max_value="1", places=2))
)
promotion_ids = st.sampled_from(["p1", "p2", "p3", "p4", "p5"])
promotions = st.one_of(
    st.builds(
        QuantityForPrice,
        promotion_id=promotion_ids,
        description=st.just("multi-buy"),
        group_id=st.sampled_from(GROUPS),
        quantity=st.integers(1, 6),
        price_cents=st.integers(0, 12_000),
    ),
    st.builds(
        PercentOffQuantity,
        promotion_id=promotion_ids,
        description=st.just("percent off"),
        group_id=st.sampled_from(GROUPS),
        quantity=st.integers(1, 6),
        rate=st.decimals(min_value="0.01", max_value="1", places=2),
        mode=st.sampled_from(SetMode),
    ),
)


@st.composite
def sales(draw: st.DrawFn) -> SaleInput:
    deals = {base: CaseDeal(base, draw(st.integers(1, 12)), draw(st.integers(0, 6000))) for base in (1, 2)}
    lines = []
    for line_id in range(1, draw(st.integers(0, 6)) + 1):
        base = draw(st.sampled_from([None, 1, 2]))
        lines.append(
            SaleLineInput(
                line_id=line_id,
                product_id=draw(st.integers(1, 4)),
                quantity=draw(st.integers(1, 30)),
                unit_price_cents=draw(st.integers(0, 5000)),
                tax_class=draw(st.sampled_from(sorted(TAX_RATES))),
                units_per_pack=draw(st.sampled_from([1, 4, 6, 12, 24])),
                deposit_per_unit_cents=draw(st.sampled_from([0, 5, 10])),
                override_price_cents=draw(st.none() | st.none() | st.integers(0, 5000)),
                manual_discount=draw(manual_discounts),
                mix_match_groups=frozenset(draw(st.sets(st.sampled_from(GROUPS)))),
                case_deal=None if base is None else deals[base],
            )
        )
    return SaleInput(
        lines=tuple(lines),
        tax_rates=TAX_RATES,
        promotions=tuple(draw(st.lists(promotions, max_size=4, unique_by=lambda p: p.promotion_id))),
        sale_discount=draw(manual_discounts),
        deposits_taxable=draw(st.booleans()),
    )


@settings(max_examples=300)
@given(sales())
def test_every_priced_sale_keeps_the_money_invariants(sale: SaleInput) -> None:
    result = price_sale(sale)

    assert result.total_cents == (
        result.subtotal_cents - result.discount_cents + result.tax_cents + result.deposit_cents
    )
    assert result.discount_cents == result.promotion_discount_cents + result.manual_discount_cents
    assert result.subtotal_cents == sum(line.gross_cents for line in result.lines)
    assert result.discount_cents == sum(line.discount_cents for line in result.lines)
    assert result.deposit_cents == sum(line.deposit_cents for line in result.lines)
    assert result.tax_cents == sum(line.tax_cents for line in result.lines)

    for given_line, line in zip(sale.lines, result.lines, strict=True):
        assert line.line_id == given_line.line_id
        assert line.gross_cents == given_line.quantity * given_line.price_cents
        assert line.deposit_cents == given_line.base_units * given_line.deposit_per_unit_cents
        assert min(line.promotion_discount_cents, line.manual_discount_cents, line.sale_discount_cents) >= 0
        assert 0 <= line.net_cents == line.gross_cents - line.discount_cents
        assert line.tax_cents >= 0
        if given_line.override_price_cents is not None:
            assert line.promotion_discount_cents == 0

    quantities = {line.line_id: line.quantity for line in sale.lines}
    used: dict[int, int] = {}
    by_line: dict[int, int] = {}
    for applied in result.promotions:
        assert applied.amount_cents > 0
        assert applied.amount_cents == sum(share.discount_cents for share in applied.shares)
        for share in applied.shares:
            used[share.line_id] = used.get(share.line_id, 0) + share.units
            by_line[share.line_id] = by_line.get(share.line_id, 0) + share.discount_cents
    assert all(used[line_id] <= quantities[line_id] for line_id in used)
    assert result.promotion_discount_cents == sum(applied.amount_cents for applied in result.promotions)
    assert all(by_line.get(line.line_id, 0) == line.promotion_discount_cents for line in result.lines)

    for tax in result.taxes:
        members = [
            (given_line, line)
            for given_line, line in zip(sale.lines, result.lines, strict=True)
            if line.tax_class == tax.tax_class
        ]
        deposits = sum(line.deposit_cents for _, line in members) if sale.deposits_taxable else 0
        assert tax.taxable_cents == sum(line.net_cents for _, line in members) + deposits
        assert tax.tax_cents == round_half_up(tax.taxable_cents * tax.rate)
        assert tax.tax_cents == sum(line.tax_cents for _, line in members)

    assert price_sale(sale) == result


def _goods_cents(sale: SaleInput) -> int:
    return sum(line.net_cents for line in price_sale(sale).lines)


@settings(max_examples=200)
@given(sales())
def test_promotions_never_make_a_sale_dearer_and_one_more_promotion_never_raises_the_price(
    sale: SaleInput,
) -> None:
    assert _goods_cents(sale) <= _goods_cents(replace(sale, promotions=()))
    if sale.promotions:
        # At most four promotions and two case deals compete here, so every order is tried.
        assert _goods_cents(sale) <= _goods_cents(replace(sale, promotions=sale.promotions[:-1]))


def test_promotions_are_reported_in_id_order_whatever_their_input_order() -> None:
    lines = (
        item(1, price=1000, quantity=6, mix_match_groups=WINE),
        item(2, price=1799, quantity=2, mix_match_groups=PAIR),
    )
    forward = priced(*lines, promotions=(WINE_SIX, TWO_FOR_30))
    backward = priced(*lines, promotions=(TWO_FOR_30, WINE_SIX))

    assert forward == backward
    assert [p.promotion_id for p in forward.promotions] == ["two-for-30", "wine-six"]
