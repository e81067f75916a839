from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posomni.kit.money import Money, format_cents, percent_of, round_half_up


@pytest.mark.parametrize(
    ("cents", "rate", "expected"),
    [
        (125, Decimal("0.07"), 9),  # $1.25 at 7 % -> $0.09 (8.75 cents rounds up)
        (1000, Decimal("0.075"), 75),  # $10.00 at 7.5 % -> $0.75
        (107, Decimal("0.07"), 7),  # $1.07 at 7 % -> $0.07 (7.49 cents rounds down)
        (0, Decimal("0.07"), 0),
    ],
)
def test_florida_tax_examples_round_half_up(cents: int, rate: Decimal, expected: int) -> None:
    assert percent_of(cents, rate) == expected


def test_half_cent_rounds_away_from_zero() -> None:
    assert round_half_up(Decimal("2.5")) == 3
    assert round_half_up(Decimal("-2.5")) == -3
    assert round_half_up(Decimal("2.4999")) == 2


@pytest.mark.parametrize(
    ("text", "cents"), [("12.34", 1234), ("$1,234.00", 123400), ("-0.5", -50), ("7", 700), (" 0.01 ", 1)]
)
def test_parse_amounts(text: str, cents: int) -> None:
    assert Money.parse(text) == Money(cents)


@pytest.mark.parametrize("text", ["1.234", "abc", "", "NaN", "Infinity", "1e3.5"])
def test_parse_refuses_non_amounts(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message differs per input)
        Money.parse(text)


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]


def test_format_cents() -> None:
    assert format_cents(123456) == "$1,234.56"
    assert format_cents(-5) == "-$0.05"
    assert str(Money(100)) == "$1.00"


@given(st.integers(-(10**9), 10**9))
def test_parse_of_formatted_amount_round_trips(cents: int) -> None:
    assert Money.parse(format_cents(cents)) == Money(cents)
