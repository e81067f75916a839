"""Per-store policies kept in `stores.settings` (JSON): every key, its default, and its validation.

Validation reports every problem at once, each with the key it belongs to. Keys are closed: an unknown key is
refused, because a misspelt policy ("min_clerck_age") would otherwise be silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from posomni.compliance.rules import FLORIDA_DEFAULT_HOURS, SaleHours, SaleHoursError, sale_hours_from_dict

RETURNS_WITHOUT_RECEIPT: Final = ("refuse", "manager", "allow")
MIN_CLERK_AGE_RANGE: Final = (16, 30)
MAX_DEPOSIT_CENTS: Final = 10_000
MAX_LOYALTY_POINTS_PER_DOLLAR: Final = 1_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
# A rate or an amount as an exact decimal string: "0.07", "1.5". Never a float: 0.07 is not exact in binary.
_DECIMAL = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")


@dataclass(frozen=True, slots=True)
class SettingProblem:
    key: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "message": self.message}


@dataclass(frozen=True)
class StoreSettings:
    """A store's effective policies: what is stored, with the default for every key that is not."""

    sale_hours: SaleHours = FLORIDA_DEFAULT_HOURS
    # Policy, not law (domain guide §1): the youngest clerk who may complete an age-restricted sale alone.
    min_clerk_age: int = 18
    verified_profile_skips_scan: bool = False
    allow_negative_stock: bool = False
    # Keep the holder's name and document number with each ID check (encrypted). Off by default: some states
    # (California, Texas) restrict keeping scanned ID data.
    keep_id_details: bool = False
    # Container deposit per base unit, in cents, by the product's deposit class.
    deposits: Mapping[str, int] = field(default_factory=dict)
    returns_without_receipt: str = "manager"
    # Extra tax classes: rate as an exact decimal fraction ("0.07").
    tax_rates: Mapping[str, str] = field(default_factory=dict)
    # Loyalty keys are read by the customers domain, which owns their defaults; absent here means "its default".
    loyalty_points_per_dollar: int | None = None
    loyalty_point_value_cents: str | None = None

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "sale_hours": self.sale_hours.to_dict(),
            "min_clerk_age": self.min_clerk_age,
            "verified_profile_skips_scan": self.verified_profile_skips_scan,
            "allow_negative_stock": self.allow_negative_stock,
            "keep_id_details": self.keep_id_details,
            "deposits": dict(self.deposits),
            "returns_without_receipt": self.returns_without_receipt,
            "tax_rates": dict(self.tax_rates),
        }
        if self.loyalty_points_per_dollar is not None:
            document["loyalty_points_per_dollar"] = self.loyalty_points_per_dollar
        if self.loyalty_point_value_cents is not None:
            document["loyalty_point_value_cents"] = self.loyalty_point_value_cents
        return document


def _int_in(value: object, low: int, high: int) -> int | None:
    # bool is an int subclass in Python; `true` must not pass as the age 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _sale_hours(value: object, problems: list[SettingProblem]) -> Any:
    try:
        return sale_hours_from_dict(value).to_dict()
    except SaleHoursError as exc:
        problems.extend(SettingProblem("sale_hours", message) for message in exc.errors)
        return None


def _min_clerk_age(value: object, problems: list[SettingProblem]) -> Any:
    low, high = MIN_CLERK_AGE_RANGE
    age = _int_in(value, low, high)
    if age is None:
        problems.append(SettingProblem("min_clerk_age", f"a whole number of years from {low} to {high}"))
    return age


def _flag(key: str) -> Callable[[object, list[SettingProblem]], Any]:
    def check(value: object, problems: list[SettingProblem]) -> Any:
        if not isinstance(value, bool):
            problems.append(SettingProblem(key, "true or false"))
            return None
        return value

    return check


def _deposits(value: object, problems: list[SettingProblem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(SettingProblem("deposits", 'an object of deposit class to cents per unit, e.g. {"crv": 5}'))
        return None
    result: dict[str, int] = {}
    for name, cents in value.items():
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            problems.append(
                SettingProblem("deposits", f"{name!r} is not a deposit class name (letters, digits, _ . -; up to 32)")
            )
        elif (amount := _int_in(cents, 0, MAX_DEPOSIT_CENTS)) is None:
            problems.append(
                SettingProblem(f"deposits.{name}", f"whole cents per base unit from 0 to {MAX_DEPOSIT_CENTS}")
            )
        else:
            result[name] = amount
    return result


def _returns_without_receipt(value: object, problems: list[SettingProblem]) -> Any:
    if value not in RETURNS_WITHOUT_RECEIPT:
        problems.append(SettingProblem("returns_without_receipt", f"one of {', '.join(RETURNS_WITHOUT_RECEIPT)}"))
        return None
    return value


def _decimal(value: object) -> Decimal | None:
    if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        return None


def _tax_rates(value: object, problems: list[SettingProblem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(SettingProblem("tax_rates", 'an object of tax class to rate, e.g. {"reduced": "0.03"}'))
        return None
    result: dict[str, str] = {}
    for name, raw in value.items():
        rate = _decimal(raw)
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            problems.append(
                SettingProblem("tax_rates", f"{name!r} is not a tax class name (letters, digits, _ . -; up to 32)")
            )
        elif rate is None or rate >= 1:
            problems.append(SettingProblem(f"tax_rates.{name}", 'a rate as a decimal string from "0" to below "1"'))
        else:
            result[name] = str(rate)
    return result


def _loyalty_points_per_dollar(value: object, problems: list[SettingProblem]) -> Any:
    points = _int_in(value, 0, MAX_LOYALTY_POINTS_PER_DOLLAR)
    if points is None:
        problems.append(
            SettingProblem("loyalty_points_per_dollar", f"a whole number from 0 to {MAX_LOYALTY_POINTS_PER_DOLLAR}")
        )
    return points


def _loyalty_point_value_cents(value: object, problems: list[SettingProblem]) -> Any:
    amount = _decimal(value)
    if amount is None:
        problems.append(SettingProblem("loyalty_point_value_cents", 'cents per point as a decimal string, e.g. "1"'))
        return None
    return str(amount)


_VALIDATORS: Final[dict[str, Callable[[object, list[SettingProblem]], Any]]] = {
    "sale_hours": _sale_hours,
    "min_clerk_age": _min_clerk_age,
    "verified_profile_skips_scan": _flag("verified_profile_skips_scan"),
    "allow_negative_stock": _flag("allow_negative_stock"),
    "keep_id_details": _flag("keep_id_details"),
    "deposits": _deposits,
    "returns_without_receipt": _returns_without_receipt,
    "tax_rates": _tax_rates,
    "loyalty_points_per_dollar": _loyalty_points_per_dollar,
    "loyalty_point_value_cents": _loyalty_point_value_cents,
}
SETTING_KEYS: Final = tuple(_VALIDATORS)


def validate(document: object) -> tuple[dict[str, Any], list[SettingProblem]]:
    """The normalised document to store, and every problem found (the document is usable only without any)."""
    if not isinstance(document, Mapping):
        return {}, [SettingProblem("", "the settings must be a JSON object")]
    problems: list[SettingProblem] = []
    normalised: dict[str, Any] = {}
    for key, value in document.items():
        validator = _VALIDATORS.get(key) if isinstance(key, str) else None
        if validator is None:
            problems.append(SettingProblem(str(key), f"unknown setting; known settings: {', '.join(SETTING_KEYS)}"))
            continue
        checked = validator(value, problems)
        if checked is not None:
            normalised[key] = checked
    return normalised, problems


class InvalidStoredSettings(ValueError):
    def __init__(self, problems: list[SettingProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.key}: {p.message}" for p in problems))


def effective(stored: Mapping[str, Any] | None) -> StoreSettings:
    """The policies in force. Stored settings are validated on every write, so a problem here means the row was
    edited by hand: raise rather than guess, because a wrong guess about sale hours breaks the law."""
    normalised, problems = validate(dict(stored or {}))
    if problems:
        raise InvalidStoredSettings(problems)
    values: dict[str, Any] = dict(normalised)
    if "sale_hours" in values:
        values["sale_hours"] = sale_hours_from_dict(values["sale_hours"])
    return StoreSettings(**values)
