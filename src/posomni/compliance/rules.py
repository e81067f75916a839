"""Proof-of-age and alcohol sale-hours rules as pure functions of store-local dates and times.

Callers turn "now" into the store's local date or time first (`store_local_date`, `posomni.kit.time`):
the rules never look at a clock or at the server's timezone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Literal

from posomni.kit.time import local_date, local_now

# --- proof of age ---------------------------------------------------------------------------------------

IdCheckOutcome = Literal["passed", "refused"]
IdCheckReason = Literal["missing_dob", "underage", "expired", "missing_expiry", "not_yet_issued"]
# When several reasons apply, the first of this order is the headline: a minor's refusal must not read as
# a mere expired card that a manager might wave through.
_REASON_ORDER: Final[tuple[IdCheckReason, ...]] = (
    "missing_dob",
    "underage",
    "expired",
    "missing_expiry",
    "not_yet_issued",
)
_DDJ_AGE: Final = 21
_MAX_MINIMUM_AGE: Final = 150


def age_allowed_on(dob: date, minimum_age: int) -> date:
    """The first store-local date on which someone born on `dob` has reached `minimum_age`."""
    if not 0 <= minimum_age <= _MAX_MINIMUM_AGE:
        raise ValueError(f"minimum age must be between 0 and {_MAX_MINIMUM_AGE}, got {minimum_age}")
    year = dob.year + minimum_age
    if year > date.max.year:
        # Not representable, and not reachable by anyone alive: never of age.
        return date.max
    try:
        return dob.replace(year=year)
    except ValueError:
        # Born 29 February, target year not a leap year: 1 March, the later (conservative) choice.
        return date(year, 3, 1)


def store_local_date(now_utc: datetime, tz_name: str) -> date:
    return local_date(tz_name, now_utc)


@dataclass(frozen=True, slots=True)
class IdCheck:
    outcome: IdCheckOutcome
    reason: IdCheckReason | None
    reasons: tuple[IdCheckReason, ...]
    # Later of DOB + minimum age and the card's under-21-until date (DDJ); None without a DOB.
    allowed_from: date | None
    # The card's DDJ differs from DOB + 21 years: worth logging, the later date has already been applied.
    under_21_mismatch: bool

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


def _ddj_disagrees(dob: date, under_21_until: date) -> bool:
    expected = age_allowed_on(dob, _DDJ_AGE)
    if under_21_until == expected:
        return False
    # Jurisdictions that write 28 February for a 29 February birth follow a legitimate convention; our
    # 1 March is the later date and wins anyway, so this is not a disagreement worth logging.
    leap_birthday = (dob.month, dob.day) == (2, 29)
    return not (leap_birthday and under_21_until == date(expected.year, 2, 28))


def check_id(
    *,
    dob: date | None,
    expires: date | None,
    on: date,
    minimum_age: int,
    issued: date | None = None,
    under_21_until: date | None = None,
) -> IdCheck:
    """Decide a proof-of-age check on the store-local date `on`.

    A document is valid through its expiry date. A missing expiry refuses (an unreadable date must send the
    cashier to manual entry, never approve); a missing issue date is not checked. `under_21_until` (AAMVA
    DDJ) only raises the bar, and only when the minimum age is 21 or more: it says nothing about 18 or 19.
    """
    found: set[IdCheckReason] = set()
    allowed_from: date | None = None
    mismatch = False
    if dob is None:
        found.add("missing_dob")
    else:
        allowed_from = age_allowed_on(dob, minimum_age)
        if under_21_until is not None:
            mismatch = _ddj_disagrees(dob, under_21_until)
            if minimum_age >= _DDJ_AGE:
                allowed_from = max(allowed_from, under_21_until)
        if on < allowed_from:
            found.add("underage")
    if expires is None:
        found.add("missing_expiry")
    elif on > expires:
        found.add("expired")
    if issued is not None and issued > on:
        found.add("not_yet_issued")
    reasons = tuple(r for r in _REASON_ORDER if r in found)
    return IdCheck(
        outcome="refused" if reasons else "passed",
        reason=reasons[0] if reasons else None,
        reasons=reasons,
        allowed_from=allowed_from,
        under_21_mismatch=mismatch,
    )


# --- sale hours -----------------------------------------------------------------------------------------

MINUTES_PER_DAY: Final = 24 * 60
WEEKDAY_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class SaleHoursError(ValueError):
    """Sale-hour rules that cannot be used; `errors` lists every problem, each prefixed by where it is."""

    def __init__(self, errors: list[str] | tuple[str, ...]) -> None:
        self.errors = tuple(errors)
        super().__init__("invalid sale hours: " + "; ".join(self.errors))


def _format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class SaleWindow:
    """Sales allowed from `opens` (inclusive) to `closes` (exclusive), in minutes after local midnight.

    `closes` runs 1..1440, so 24:00 is 1440 and means "until the end of the day". A window whose close is
    earlier than its open crosses midnight and ends on the next calendar day.
    """

    opens: int
    closes: int

    def __post_init__(self) -> None:
        if not 0 <= self.opens < MINUTES_PER_DAY:
            raise SaleHoursError([f"opens must be 00:00 to 23:59, got minute {self.opens}"])
        if not 0 < self.closes <= MINUTES_PER_DAY:
            raise SaleHoursError([f"closes must be 00:01 to 24:00, got minute {self.closes}"])
        if self.opens == self.closes:
            raise SaleHoursError(
                [f"opens and closes are both {_format_minutes(self.opens)}; use 00:00 to 24:00 for all day"]
            )

    @classmethod
    def between(cls, opens: str, closes: str) -> SaleWindow:
        """From "HH:MM" strings; a close of "00:00" or "24:00" means midnight at the end of the day."""
        errors: list[str] = []
        window = _window_from_strings(opens, closes, "window", errors)
        if window is None:
            raise SaleHoursError(errors)
        return window

    @property
    def crosses_midnight(self) -> bool:
        return self.closes < self.opens

    def to_dict(self) -> dict[str, str]:
        return {"opens": _format_minutes(self.opens), "closes": _format_minutes(self.closes)}


# A day's rule: the windows that open on that day. Empty means no sales at all that calendar day.
DayRule = tuple[SaleWindow, ...]

FLORIDA_DEFAULT_WINDOW: Final = SaleWindow(opens=7 * 60, closes=MINUTES_PER_DAY)


def _rule_to_list(rule: DayRule) -> list[dict[str, str]]:
    return [window.to_dict() for window in rule]


@dataclass(frozen=True, slots=True)
class SaleHours:
    """Per-store alcohol sale hours: a default day, per-weekday overrides, per-date (holiday) overrides.

    The rule for a date is its date override, else its weekday override, else the default. A window that
    crosses midnight belongs to the day it opens on, and its after-midnight part still applies when the next
    day has a different rule of its own (Saturday 07:00-02:00 allows Sunday 01:30 even if Sunday opens at
    11:00), because licences and ordinances state a night's hours that way. The exception is a day whose
    rule is "no sales": that is a ban on the whole calendar day (a holiday, a Sunday ban), so the previous
    night's window stops at midnight.
    """

    default: DayRule = (FLORIDA_DEFAULT_WINDOW,)
    # 0 = Monday … 6 = Sunday, as datetime.weekday().
    weekdays: Mapping[int, DayRule] = field(default_factory=dict, hash=False)
    dates: Mapping[date, DayRule] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        bad = sorted(k for k in self.weekdays if not 0 <= k <= 6)
        if bad:
            raise SaleHoursError([f"weekdays: keys must be 0 (Monday) to 6 (Sunday), got {bad}"])
        # Frozen in fact, not just in name: callers may have passed dicts they go on to mutate.
        object.__setattr__(self, "default", tuple(self.default))
        weekdays = {k: tuple(v) for k, v in self.weekdays.items()}
        dates = {k: tuple(v) for k, v in self.dates.items()}
        object.__setattr__(self, "weekdays", MappingProxyType(weekdays))
        object.__setattr__(self, "dates", MappingProxyType(dates))

    def rule_for(self, day: date) -> DayRule:
        if day in self.dates:
            return self.dates[day]
        return self.weekdays.get(day.weekday(), self.default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": _rule_to_list(self.default),
            "weekdays": {WEEKDAY_NAMES[k]: _rule_to_list(v) for k, v in sorted(self.weekdays.items())},
            "dates": {k.isoformat(): _rule_to_list(v) for k, v in sorted(self.dates.items())},
        }


FLORIDA_DEFAULT_HOURS: Final = SaleHours()

SaleHoursReason = Literal["within_hours", "previous_day_hours", "outside_hours", "no_sales_day"]


@dataclass(frozen=True, slots=True)
class SaleHoursDecision:
    allowed: bool
    reason: SaleHoursReason


def sale_decision_at(hours: SaleHours, local: datetime) -> SaleHoursDecision:
    """Whether alcohol may be tendered at `local`, the store's wall-clock time.

    An aware datetime is read by its own wall clock, so convert it to the store's zone first
    (`sale_decision_now` does).
    """
    day = local.date()
    today = hours.rule_for(day)
    if not today:
        return SaleHoursDecision(allowed=False, reason="no_sales_day")
    # Whole seconds, truncated: 06:59:59.999 is still before 07:00 and 23:59:59.999 still before 24:00.
    second = local.hour * 3600 + local.minute * 60 + local.second
    for window in today:
        closes = MINUTES_PER_DAY if window.crosses_midnight else window.closes
        if window.opens * 60 <= second < closes * 60:
            return SaleHoursDecision(allowed=True, reason="within_hours")
    if day > date.min:
        for window in hours.rule_for(day - timedelta(days=1)):
            if window.crosses_midnight and second < window.closes * 60:
                return SaleHoursDecision(allowed=True, reason="previous_day_hours")
    return SaleHoursDecision(allowed=False, reason="outside_hours")


def sale_allowed_at(hours: SaleHours, local: datetime) -> bool:
    return sale_decision_at(hours, local).allowed


def sale_decision_now(hours: SaleHours, now_utc: datetime, tz_name: str) -> SaleHoursDecision:
    return sale_decision_at(hours, local_now(tz_name, now_utc))


def _minutes(value: object, where: str, *, closing: bool, errors: list[str]) -> int | None:
    if not isinstance(value, str) or _TIME.fullmatch(value) is None:
        errors.append(f'{where}: {value!r} is not a time; use "HH:MM" from 00:00 to 24:00')
        return None
    hours, minutes = int(value[:2]), int(value[3:])
    total = hours * 60 + minutes
    if total == MINUTES_PER_DAY and not closing:
        errors.append(f"{where}: a window cannot open at 24:00; use 00:00")
        return None
    if total == 0 and closing:
        # A close of 00:00 is the midnight that ends the day, the same as 24:00.
        return MINUTES_PER_DAY
    return total


def _window_from_strings(opens: object, closes: object, where: str, errors: list[str]) -> SaleWindow | None:
    start = _minutes(opens, f"{where}.opens", closing=False, errors=errors)
    end = _minutes(closes, f"{where}.closes", closing=True, errors=errors)
    if start is None or end is None:
        return None
    if start == end:
        errors.append(f"{where}: opens and closes are both {opens}; use 00:00 to 24:00 for all day")
        return None
    return SaleWindow(opens=start, closes=end)


def _day_rule(value: object, where: str, errors: list[str]) -> DayRule | None:
    if not isinstance(value, list):
        errors.append(
            f'{where}: expected a list of windows like [{{"opens": "07:00", "closes": "24:00"}}], '
            f"or [] for no sales that day; got {type(value).__name__}"
        )
        return None
    windows: list[SaleWindow] = []
    ok = True
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            errors.append(f'{at}: expected an object with "opens" and "closes", got {type(item).__name__}')
            ok = False
            continue
        unknown = sorted(str(k) for k in item if k not in ("opens", "closes"))
        missing = [k for k in ("opens", "closes") if k not in item]
        if unknown or missing:
            if unknown:
                errors.append(f'{at}: unknown key(s) {", ".join(unknown)}; a window has "opens" and "closes"')
            if missing:
                errors.append(f"{at}: missing {' and '.join(missing)}")
            ok = False
            continue
        window = _window_from_strings(item["opens"], item["closes"], at, errors)
        if window is None:
            ok = False
        else:
            windows.append(window)
    return tuple(windows) if ok else None


def sale_hours_from_dict(data: object) -> SaleHours:
    """Build sale hours from their JSON form (as stored in store settings); raise SaleHoursError listing
    every problem.

    {"default": [{"opens": "07:00", "closes": "24:00"}],          # optional; Florida's hours if absent
     "weekdays": {"sunday": [{"opens": "11:00", "closes": "02:00"}]},
     "dates": {"2026-12-25": []}}                                 # [] = no sales that day
    """
    if not isinstance(data, Mapping):
        raise SaleHoursError([f"sale hours must be an object, got {type(data).__name__}"])
    errors: list[str] = []
    unknown = sorted(str(k) for k in data if k not in ("default", "weekdays", "dates"))
    if unknown:
        errors.append(f"unknown key(s) {', '.join(unknown)}; expected default, weekdays, dates")

    default: DayRule | None = (FLORIDA_DEFAULT_WINDOW,)
    if "default" in data:
        default = _day_rule(data["default"], "default", errors)

    weekdays: dict[int, DayRule] = {}
    raw_weekdays = data.get("weekdays", {})
    if not isinstance(raw_weekdays, Mapping):
        kind = type(raw_weekdays).__name__
        errors.append(f"weekdays: expected an object keyed by weekday name, got {kind}")
    else:
        for key, value in raw_weekdays.items():
            name = key.lower() if isinstance(key, str) else None
            if name not in WEEKDAY_NAMES:
                errors.append(f"weekdays: unknown weekday {key!r}; use monday, tuesday, … sunday")
                continue
            index = WEEKDAY_NAMES.index(name)
            if index in weekdays:
                errors.append(f"weekdays: {name} is given twice")
                continue
            rule = _day_rule(value, f"weekdays.{name}", errors)
            if rule is not None:
                weekdays[index] = rule

    dates: dict[date, DayRule] = {}
    raw_dates = data.get("dates", {})
    if not isinstance(raw_dates, Mapping):
        errors.append(f"dates: expected an object keyed by YYYY-MM-DD, got {type(raw_dates).__name__}")
    else:
        for key, value in raw_dates.items():
            day = _iso_date(key)
            if day is None:
                errors.append(f"dates: {key!r} is not a date; use YYYY-MM-DD")
                continue
            rule = _day_rule(value, f"dates.{key}", errors)
            if rule is not None:
                dates[day] = rule

    if errors or default is None:
        raise SaleHoursError(errors)
    return SaleHours(default=default, weekdays=weekdays, dates=dates)


def _iso_date(value: object) -> date | None:
    if not isinstance(value, str) or _ISO_DATE.fullmatch(value) is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
