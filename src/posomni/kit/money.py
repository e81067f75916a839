"""Money as integer cents, and the one rounding rule used for every derived amount.

Amounts are never floats. Rates (tax, discounts) are `Decimal`; the product of cents and a rate is rounded
to whole cents by `round_half_up` and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

CENT: Final = Decimal(1)


def round_half_up(value: Decimal) -> int:
    """Round an amount in cents to whole cents, halves away from zero.

    Florida (since 2021-07-01) carries tax to the third decimal of a dollar and rounds up from 5; computing
    the exact amount in cents and rounding half-up here gives the same result for every input.
    """
    return int(value.quantize(CENT, rounding=ROUND_HALF_UP))


def percent_of(cents: int, rate: Decimal) -> int:
    """`rate` is a fraction (0.07 for 7 %); returns whole cents."""
    return round_half_up(Decimal(cents) * rate)


@dataclass(frozen=True, slots=True, order=True)
class Money:
    cents: int

    def __post_init__(self) -> None:
        if isinstance(self.cents, bool) or not isinstance(self.cents, int):
            raise TypeError(f"Money needs integer cents, got {type(self.cents).__name__}")

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def parse(cls, text: str) -> Money:
        """Parse a decimal amount such as "12.34", "-0.5" or "$1,234.00"; more than two decimals is an error."""
        cleaned = text.strip().replace(",", "")
        negative = cleaned.startswith("-")
        cleaned = cleaned.removeprefix("-").removeprefix("$")
        if negative:
            cleaned = "-" + cleaned
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise ValueError(f"not an amount: {text!r}") from None
        if not value.is_finite():
            raise ValueError(f"not an amount: {text!r}")
        cents = value * 100
        if cents != cents.to_integral_value():
            raise ValueError(f"more than two decimals: {text!r}")
        return cls(int(cents))

    def __add__(self, other: Money) -> Money:
        return Money(self.cents + other.cents)

    def __sub__(self, other: Money) -> Money:
        return Money(self.cents - other.cents)

    def __neg__(self) -> Money:
        return Money(-self.cents)

    def times(self, quantity: int) -> Money:
        return Money(self.cents * quantity)

    def at_rate(self, rate: Decimal) -> Money:
        return Money(percent_of(self.cents, rate))

    def __str__(self) -> str:
        return format_cents(self.cents)


def format_cents(cents: int, symbol: str = "$") -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{symbol}{whole:,}.{frac:02d}"
