"""What the pricing engine is given. Every amount is integer cents; every rate is a `Decimal` fraction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, TypeAlias

from posomni.kit.errors import ValidationFailed


class PricingError(ValidationFailed):
    code: ClassVar[str] = "invalid_pricing_input"
    default_message = "The sale cannot be priced."


class UnknownTaxClass(PricingError):
    code = "unknown_tax_class"
    default_message = "A line's tax class has no rate for this store."


def _whole(name: str, value: object, minimum: int) -> None:
    # bool is an int subclass; True cents is a bug, not a cent.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PricingError(f"{name} must be a whole number.", details={"field": name})
    if value < minimum:
        raise PricingError(f"{name} must be at least {minimum}.", details={"field": name})


def _rate(name: str, value: object, *, allow_zero: bool) -> None:
    # Floats are refused outright: 0.07 as a float is not 7 %.
    if not isinstance(value, Decimal) or not value.is_finite():
        raise PricingError(f"{name} must be a finite Decimal fraction.", details={"field": name})
    if value > 1 or value < 0 or (value == 0 and not allow_zero):
        raise PricingError(f"{name} must be a fraction of 1 (0.10 is 10 %).", details={"field": name})


@dataclass(frozen=True, slots=True)
class AmountOff:
    cents: int

    def __post_init__(self) -> None:
        _whole("cents", self.cents, 1)


@dataclass(frozen=True, slots=True)
class PercentOff:
    # A fraction: Decimal("0.10") is 10 % off.
    rate: Decimal

    def __post_init__(self) -> None:
        _rate("rate", self.rate, allow_zero=False)


ManualDiscount: TypeAlias = AmountOff | PercentOff


@dataclass(frozen=True, slots=True)
class CaseDeal:
    """Singles of one base product bought by the full case are charged the case price, case by case."""

    base_product_id: int
    # Counted in sellable units of the lines carrying the deal (singles, as the catalog attaches it).
    case_size: int
    case_price_cents: int

    def __post_init__(self) -> None:
        _whole("case_size", self.case_size, 1)
        _whole("case_price_cents", self.case_price_cents, 0)


@dataclass(frozen=True, slots=True)
class SaleLineInput:
    line_id: int
    product_id: int
    # Sellable units: one 6-pack is quantity 1 at the 6-pack's price.
    quantity: int
    unit_price_cents: int
    tax_class: str
    # Base units (bottles, cans) in one sellable unit; carried for stock and deposits, never for price.
    units_per_pack: int = 1
    deposit_per_unit_cents: int = 0
    # Manager price per sellable unit. It replaces the price (it is not a discount), and an overridden line
    # takes part in no promotion: the manager has already decided what it costs.
    override_price_cents: int | None = None
    # Amount off the whole line, or a percentage of what is left after promotions.
    manual_discount: ManualDiscount | None = None
    mix_match_groups: frozenset[str] = field(default_factory=frozenset)
    case_deal: CaseDeal | None = None

    def __post_init__(self) -> None:
        _whole("quantity", self.quantity, 1)
        _whole("unit_price_cents", self.unit_price_cents, 0)
        _whole("units_per_pack", self.units_per_pack, 1)
        _whole("deposit_per_unit_cents", self.deposit_per_unit_cents, 0)
        if self.override_price_cents is not None:
            _whole("override_price_cents", self.override_price_cents, 0)
        object.__setattr__(self, "mix_match_groups", frozenset(self.mix_match_groups))

    @property
    def price_cents(self) -> int:
        """What one sellable unit costs before discounts."""
        return self.unit_price_cents if self.override_price_cents is None else self.override_price_cents

    @property
    def base_units(self) -> int:
        return self.quantity * self.units_per_pack


class SetMode(StrEnum):
    # Each complete set of N items is discounted; the 7th bottle of "any 6" waits for five more.
    EACH_COMPLETE_SET = "each_complete_set"
    # Once N items are bought, every item of the group is discounted, the 7th included.
    ALL_ONCE_REACHED = "all_once_reached"


@dataclass(frozen=True, slots=True)
class QuantityForPrice:
    """Each complete set of `quantity` items of the group costs `price_cents` together ("2 for $30")."""

    promotion_id: str
    description: str
    group_id: str
    quantity: int
    price_cents: int

    def __post_init__(self) -> None:
        _whole("quantity", self.quantity, 1)
        _whole("price_cents", self.price_cents, 0)


@dataclass(frozen=True, slots=True)
class PercentOffQuantity:
    """`rate` off once `quantity` items of the group are bought ("any 6 bottles of wine 10 % off")."""

    promotion_id: str
    description: str
    group_id: str
    quantity: int
    rate: Decimal
    mode: SetMode = SetMode.EACH_COMPLETE_SET

    def __post_init__(self) -> None:
        _whole("quantity", self.quantity, 1)
        _rate("rate", self.rate, allow_zero=False)


Promotion: TypeAlias = QuantityForPrice | PercentOffQuantity


def case_promotion_id(base_product_id: int) -> str:
    return f"case:{base_product_id}"


@dataclass(frozen=True, slots=True)
class SaleInput:
    lines: tuple[SaleLineInput, ...]
    # Rate per tax class, as a fraction: {"standard": Decimal("0.07"), "exempt": Decimal("0")}.
    tax_rates: Mapping[str, Decimal]
    promotions: tuple[Promotion, ...] = ()
    # Manager discount on the whole sale, taken after promotions and line discounts.
    sale_discount: ManualDiscount | None = None
    # Deposits are refundable and, by default, outside the taxable amount; some states tax them.
    deposits_taxable: bool = False

    def __post_init__(self) -> None:
        lines = tuple(self.lines)
        promotions = tuple(self.promotions)
        rates = MappingProxyType(dict(self.tax_rates))
        object.__setattr__(self, "lines", lines)
        object.__setattr__(self, "promotions", promotions)
        object.__setattr__(self, "tax_rates", rates)
        for tax_class, rate in rates.items():
            _rate(f"tax_rates[{tax_class}]", rate, allow_zero=True)
        _unique("line_id", (line.line_id for line in lines))
        for line in lines:
            if line.tax_class not in rates:
                raise UnknownTaxClass(details={"tax_class": line.tax_class, "line_id": line.line_id})
        deals: dict[int, CaseDeal] = {}
        for line in lines:
            deal = line.case_deal
            if deal is not None and deals.setdefault(deal.base_product_id, deal) != deal:
                # One base product has one case rule; two would make "a full case" mean two things.
                raise PricingError(
                    "Lines of one base product carry different case prices.",
                    details={"base_product_id": deal.base_product_id},
                )
        _unique(
            "promotion_id",
            [promotion.promotion_id for promotion in promotions] + [case_promotion_id(d) for d in deals],
        )


def _unique(name: str, values: Iterable[object]) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise PricingError(f"Duplicate {name}.", details={"field": name, "value": str(value)})
        seen.add(value)
