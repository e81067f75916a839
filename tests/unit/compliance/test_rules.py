from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posomni.compliance.rules import (
    FLORIDA_DEFAULT_HOURS,
    MINUTES_PER_DAY,
    SaleHours,
    SaleHoursError,
    SaleWindow,
    age_allowed_on,
    check_id,
    sale_allowed_at,
    sale_decision_at,
    sale_decision_now,
    sale_hours_from_dict,
    store_local_date,
)

FAR_FUTURE = date(2099, 12, 31)
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)


def check(dob: date | None, on: date, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {"expires": FAR_FUTURE, "minimum_age": 21, "issued": None} | overrides
    return check_id(dob=dob, on=on, **arguments)


# --- age_allowed_on -----------------------------------------------------------------------------------


def test_allowed_date_is_the_21st_birthday() -> None:
    assert age_allowed_on(date(2005, 6, 15), 21) == date(2026, 6, 15)


def test_born_29_february_is_of_age_on_29_february_of_a_leap_target_year() -> None:
    assert age_allowed_on(date(2004, 2, 29), 20) == date(2024, 2, 29)


def test_born_29_february_is_of_age_on_1_march_of_a_non_leap_target_year() -> None:
    assert age_allowed_on(date(2004, 2, 29), 21) == date(2025, 3, 1)


@pytest.mark.parametrize("minimum_age", [-1, 151])
def test_nonsense_minimum_age_is_rejected(minimum_age: int) -> None:
    with pytest.raises(ValueError, match="minimum age"):
        age_allowed_on(date(2000, 1, 1), minimum_age)


def test_allowed_date_beyond_the_calendar_means_never() -> None:
    assert age_allowed_on(date(9990, 1, 1), 21) == date.max


# --- check_id -----------------------------------------------------------------------------------------


def test_dob_2005_06_15_is_refused_on_2026_06_14() -> None:
    result = check(date(2005, 6, 15), date(2026, 6, 14))

    assert result.outcome == "refused"
    assert result.reason == "underage"
    assert result.allowed_from == date(2026, 6, 15)


def test_dob_2005_06_15_is_allowed_on_2026_06_15() -> None:
    result = check(date(2005, 6, 15), date(2026, 6, 15))

    assert result.outcome == "passed"
    assert result.passed
    assert result.reason is None
    assert result.reasons == ()


def test_underage_by_one_day_is_refused() -> None:
    dob = date(1999, 11, 30)

    assert check(dob, date(2020, 11, 29)).reason == "underage"


def test_of_age_on_the_birthday_itself_is_allowed() -> None:
    assert check(date(1999, 11, 30), date(2020, 11, 30)).passed


def test_born_29_february_is_refused_on_28_february_of_a_non_leap_year() -> None:
    assert check(date(2004, 2, 29), date(2025, 2, 28)).reason == "underage"


def test_born_29_february_is_allowed_on_1_march_of_a_non_leap_year() -> None:
    assert check(date(2004, 2, 29), date(2025, 3, 1)).passed


def test_born_29_february_is_allowed_on_29_february_of_a_leap_target_year() -> None:
    # With 21 the target year is always odd, so a leap target needs another minimum age.
    dob = date(2004, 2, 29)

    assert check(dob, date(2024, 2, 28), minimum_age=20).reason == "underage"
    result = check(dob, date(2024, 2, 29), minimum_age=20)
    assert result.passed
    assert result.allowed_from == date(2024, 2, 29)


def test_document_expired_yesterday_is_refused() -> None:
    result = check(date(1980, 1, 1), date(2026, 5, 10), expires=date(2026, 5, 9))

    assert result.outcome == "refused"
    assert result.reason == "expired"


def test_document_expiring_today_is_still_valid() -> None:
    assert check(date(1980, 1, 1), date(2026, 5, 10), expires=date(2026, 5, 10)).passed


def test_document_issued_tomorrow_is_refused() -> None:
    result = check(date(1980, 1, 1), date(2026, 5, 10), issued=date(2026, 5, 11))

    assert result.reason == "not_yet_issued"


def test_document_issued_today_is_valid() -> None:
    assert check(date(1980, 1, 1), date(2026, 5, 10), issued=date(2026, 5, 10)).passed


def test_missing_dob_is_refused() -> None:
    result = check(None, date(2026, 5, 10))

    assert result.reason == "missing_dob"
    assert result.allowed_from is None


def test_missing_expiry_is_refused_so_an_unreadable_date_never_approves() -> None:
    assert check(date(1980, 1, 1), date(2026, 5, 10), expires=None).reason == "missing_expiry"


def test_underage_is_the_headline_reason_when_the_document_is_also_expired() -> None:
    result = check(date(2010, 1, 1), date(2026, 5, 10), expires=date(2025, 1, 1), issued=date(2027, 1, 1))

    assert result.reason == "underage"
    assert result.reasons == ("underage", "expired", "not_yet_issued")


def test_ddj_later_than_dob_plus_21_wins_and_is_flagged() -> None:
    dob = date(2005, 6, 15)

    result = check(dob, date(2026, 6, 16), under_21_until=date(2026, 6, 17))

    assert result.reason == "underage"
    assert result.allowed_from == date(2026, 6, 17)
    assert result.under_21_mismatch
    assert check(dob, date(2026, 6, 17), under_21_until=date(2026, 6, 17)).passed


def test_ddj_earlier_than_dob_plus_21_does_not_lower_the_bar_but_is_flagged() -> None:
    result = check(date(2005, 6, 15), date(2026, 6, 14), under_21_until=date(2026, 6, 1))

    assert result.reason == "underage"
    assert result.allowed_from == date(2026, 6, 15)
    assert result.under_21_mismatch


def test_ddj_matching_dob_plus_21_is_not_flagged() -> None:
    result = check(date(2005, 6, 15), date(2026, 6, 15), under_21_until=date(2026, 6, 15))

    assert result.passed
    assert not result.under_21_mismatch


def test_ddj_of_28_february_for_a_leap_birthday_is_a_convention_not_a_mismatch() -> None:
    result = check(date(2004, 2, 29), date(2025, 2, 28), under_21_until=date(2025, 2, 28))

    assert result.reason == "underage"
    assert result.allowed_from == date(2025, 3, 1)
    assert not result.under_21_mismatch


def test_ddj_does_not_apply_to_a_lower_minimum_age() -> None:
    result = check(date(2006, 6, 15), date(2026, 6, 15), minimum_age=19, under_21_until=date(2027, 6, 15))

    assert result.passed
    assert result.allowed_from == date(2025, 6, 15)


# --- store-local date at midnight ---------------------------------------------------------------------


def test_birthday_in_utc_but_not_yet_in_new_york_is_refused() -> None:
    # 02:00 UTC on 15 June is 22:00 on 14 June in New York (EDT, UTC-4).
    now = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)

    on = store_local_date(now, "America/New_York")

    assert on == date(2026, 6, 14)
    assert check(date(2005, 6, 15), on).reason == "underage"


def test_the_same_instant_can_be_the_birthday_in_new_york_but_not_in_chicago() -> None:
    # 04:30 UTC on 15 June: 00:30 on the 15th in New York, 23:30 on the 14th in Chicago.
    now = datetime(2026, 6, 15, 4, 30, tzinfo=UTC)
    dob = date(2005, 6, 15)

    assert check(dob, store_local_date(now, "America/New_York")).passed
    assert check(dob, store_local_date(now, "America/Chicago")).reason == "underage"


def test_store_local_date_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        store_local_date(datetime(2026, 6, 15, 4, 30), "America/New_York")


# --- properties over dates ----------------------------------------------------------------------------

DOBS = st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31))
DAYS = st.dates(min_value=date(1950, 1, 1), max_value=date(2080, 12, 31))


def completed_years(dob: date, on: date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


@given(DOBS, DAYS, st.integers(min_value=0, max_value=40))
@PROPERTY_SETTINGS
def test_age_check_agrees_with_counting_completed_years(dob: date, on: date, minimum_age: int) -> None:
    result = check(dob, on, minimum_age=minimum_age)

    assert (result.reason != "underage") == (completed_years(dob, on) >= minimum_age)


@given(DOBS, st.integers(min_value=0, max_value=40))
@PROPERTY_SETTINGS
def test_allowed_date_is_the_first_day_of_age(dob: date, minimum_age: int) -> None:
    allowed = age_allowed_on(dob, minimum_age)

    assert check(dob, allowed, minimum_age=minimum_age).passed
    assert check(dob, allowed - timedelta(days=1), minimum_age=minimum_age).reason == "underage"
    assert allowed.year == dob.year + minimum_age


@given(DOBS, DAYS, st.one_of(st.none(), DAYS))
@PROPERTY_SETTINGS
def test_ddj_never_allows_earlier_than_dob_plus_21(dob: date, on: date, ddj: date | None) -> None:
    result = check(dob, on, under_21_until=ddj)

    if result.passed:
        assert on >= age_allowed_on(dob, 21)
        assert ddj is None or on >= ddj


@given(DAYS, DAYS)
@PROPERTY_SETTINGS
def test_a_document_is_valid_exactly_through_its_expiry_date(on: date, expires: date) -> None:
    result = check(date(1900, 1, 1), on, expires=expires)

    assert result.passed == (on <= expires)


# --- sale hours ---------------------------------------------------------------------------------------


def at(day: date, hhmmss: str) -> datetime:
    hours, minutes, seconds = (int(part) for part in hhmmss.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, seconds)


MONDAY = date(2026, 6, 15)
SATURDAY = date(2026, 6, 20)
SUNDAY = date(2026, 6, 21)


@pytest.mark.parametrize(
    ("clock", "allowed"),
    [
        ("23:59:59", True),
        ("00:00:00", False),
        ("06:59:59", False),
        ("07:00:00", True),
        ("12:00:00", True),
        ("03:00:00", False),
    ],
)
def test_florida_default_hours(clock: str, allowed: bool) -> None:
    assert sale_allowed_at(FLORIDA_DEFAULT_HOURS, at(MONDAY, clock)) is allowed


def test_last_microsecond_before_seven_is_still_refused() -> None:
    moment = at(MONDAY, "06:59:59").replace(microsecond=999_999)

    assert not sale_allowed_at(FLORIDA_DEFAULT_HOURS, moment)


def test_refusal_outside_hours_says_why() -> None:
    decision = sale_decision_at(FLORIDA_DEFAULT_HOURS, at(MONDAY, "00:00:00"))

    assert (decision.allowed, decision.reason) == (False, "outside_hours")


def test_the_florida_default_dict_builds_the_florida_default() -> None:
    assert sale_hours_from_dict({}) == FLORIDA_DEFAULT_HOURS
    assert sale_hours_from_dict({"default": [{"opens": "07:00", "closes": "24:00"}]}) == FLORIDA_DEFAULT_HOURS


def late_hours(**extra: Any) -> SaleHours:
    return sale_hours_from_dict({"default": [{"opens": "07:00", "closes": "02:00"}], **extra})


@pytest.mark.parametrize(
    ("clock", "allowed", "reason"),
    [
        ("23:59:59", True, "within_hours"),
        ("00:00:00", True, "previous_day_hours"),
        ("01:59:59", True, "previous_day_hours"),
        ("02:00:00", False, "outside_hours"),
        ("06:59:59", False, "outside_hours"),
        ("07:00:00", True, "within_hours"),
    ],
)
def test_window_crossing_midnight(clock: str, allowed: bool, reason: str) -> None:
    decision = sale_decision_at(late_hours(), at(MONDAY, clock))

    assert (decision.allowed, decision.reason) == (allowed, reason)


def test_weekday_override_replaces_the_default_for_that_day() -> None:
    hours = sale_hours_from_dict({"weekdays": {"sunday": [{"opens": "11:00", "closes": "24:00"}]}})

    assert not sale_allowed_at(hours, at(SUNDAY, "10:59:59"))
    assert sale_allowed_at(hours, at(SUNDAY, "11:00:00"))
    assert sale_allowed_at(hours, at(SATURDAY, "07:00:00"))


def test_saturday_late_window_still_allows_sunday_after_midnight_when_sunday_opens_later() -> None:
    hours = late_hours(weekdays={"sunday": [{"opens": "11:00", "closes": "24:00"}]})

    decision = sale_decision_at(hours, at(SUNDAY, "01:30:00"))

    assert (decision.allowed, decision.reason) == (True, "previous_day_hours")
    assert not sale_allowed_at(hours, at(SUNDAY, "02:00:00"))
    assert not sale_allowed_at(hours, at(SUNDAY, "10:00:00"))


def test_a_sunday_without_its_own_late_window_does_not_spill_into_monday() -> None:
    hours = late_hours(weekdays={"sunday": [{"opens": "11:00", "closes": "24:00"}]})

    assert not sale_allowed_at(hours, at(MONDAY, "01:00:00"))


def test_holiday_with_no_sales_refuses_the_whole_calendar_day() -> None:
    hours = sale_hours_from_dict({"dates": {"2026-12-25": []}})
    christmas = date(2026, 12, 25)

    for clock in ("00:00:00", "07:00:00", "12:00:00", "23:59:59"):
        decision = sale_decision_at(hours, at(christmas, clock))
        assert (decision.allowed, decision.reason) == (False, "no_sales_day")
    assert sale_allowed_at(hours, at(date(2026, 12, 24), "12:00:00"))
    assert sale_allowed_at(hours, at(date(2026, 12, 26), "12:00:00"))


def test_no_sales_day_also_cuts_off_the_previous_nights_window_at_midnight() -> None:
    hours = late_hours(dates={"2026-12-25": []})

    assert sale_allowed_at(hours, at(date(2026, 12, 24), "23:59:59"))
    assert not sale_allowed_at(hours, at(date(2026, 12, 25), "01:00:00"))


def test_date_override_beats_weekday_override() -> None:
    hours = sale_hours_from_dict(
        {
            "weekdays": {"sunday": []},
            "dates": {"2026-06-21": [{"opens": "12:00", "closes": "18:00"}]},
        }
    )

    assert sale_allowed_at(hours, at(SUNDAY, "12:00:00"))
    assert not sale_allowed_at(hours, at(SUNDAY, "18:00:00"))
    assert not sale_allowed_at(hours, at(SUNDAY + timedelta(days=7), "12:00:00"))


def test_several_windows_in_one_day() -> None:
    hours = sale_hours_from_dict(
        {"default": [{"opens": "07:00", "closes": "12:00"}, {"opens": "13:00", "closes": "24:00"}]}
    )

    assert sale_allowed_at(hours, at(MONDAY, "11:59:59"))
    assert not sale_allowed_at(hours, at(MONDAY, "12:30:00"))
    assert sale_allowed_at(hours, at(MONDAY, "13:00:00"))


def test_all_day_window_allows_every_second() -> None:
    hours = sale_hours_from_dict({"default": [{"opens": "00:00", "closes": "24:00"}]})

    assert sale_allowed_at(hours, at(MONDAY, "00:00:00"))
    assert sale_allowed_at(hours, at(MONDAY, "23:59:59"))


def test_close_of_midnight_written_as_00_00_means_end_of_day() -> None:
    hours = sale_hours_from_dict({"default": [{"opens": "07:00", "closes": "00:00"}]})

    assert hours == FLORIDA_DEFAULT_HOURS
    assert hours.to_dict()["default"] == [{"opens": "07:00", "closes": "24:00"}]


def test_sale_decision_now_uses_the_store_timezone() -> None:
    # 03:59:59 UTC is 23:59:59 EDT; 04:00:00 UTC is midnight in New York.
    before = datetime(2026, 6, 16, 3, 59, 59, tzinfo=UTC)
    after = datetime(2026, 6, 16, 4, 0, 0, tzinfo=UTC)

    assert sale_decision_now(FLORIDA_DEFAULT_HOURS, before, "America/New_York").allowed
    assert not sale_decision_now(FLORIDA_DEFAULT_HOURS, after, "America/New_York").allowed
    assert sale_decision_now(FLORIDA_DEFAULT_HOURS, after, "America/Chicago").allowed


def test_sale_hours_are_immutable_even_when_built_from_a_dict_that_changes() -> None:
    weekdays: dict[int, tuple[SaleWindow, ...]] = {6: (SaleWindow(11 * 60, MINUTES_PER_DAY),)}
    hours = SaleHours(weekdays=weekdays)

    weekdays[6] = ()

    assert sale_allowed_at(hours, at(SUNDAY, "12:00:00"))


def test_window_from_strings() -> None:
    assert SaleWindow.between("07:00", "02:00") == SaleWindow(opens=420, closes=120)
    assert SaleWindow.between("07:00", "02:00").crosses_midnight
    assert not SaleWindow.between("07:00", "24:00").crosses_midnight


@pytest.mark.parametrize(
    ("opens", "closes", "message"),
    [(-1, 60, "opens"), (1440, 60, "opens"), (60, 0, "closes"), (60, 1441, "closes"), (420, 420, "all day")],
)
def test_window_with_impossible_minutes_is_rejected(opens: int, closes: int, message: str) -> None:
    with pytest.raises(SaleHoursError, match=message):
        SaleWindow(opens=opens, closes=closes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be an object"),
        ({"defualt": []}, "unknown key(s) defualt"),
        ({"default": "07:00-24:00"}, "default: expected a list of windows"),
        ({"default": ["07:00-24:00"]}, 'default[0]: expected an object with "opens" and "closes"'),
        ({"default": [{"opens": "07:00"}]}, "default[0]: missing closes"),
        (
            {"default": [{"opens": "07:00", "closes": "24:00", "until": "x"}]},
            "default[0]: unknown key(s) until",
        ),
        ({"default": [{"opens": "7:00", "closes": "24:00"}]}, "default[0].opens: '7:00' is not a time"),
        ({"default": [{"opens": "07:00", "closes": "25:00"}]}, "default[0].closes: '25:00' is not a time"),
        ({"default": [{"opens": "07:60", "closes": "24:00"}]}, "default[0].opens: '07:60' is not a time"),
        ({"default": [{"opens": 700, "closes": "24:00"}]}, "default[0].opens: 700 is not a time"),
        ({"default": [{"opens": "24:00", "closes": "02:00"}]}, "cannot open at 24:00"),
        ({"default": [{"opens": "07:00", "closes": "07:00"}]}, "use 00:00 to 24:00 for all day"),
        ({"weekdays": {"sundy": []}}, "unknown weekday 'sundy'"),
        ({"weekdays": {"sunday": [], "Sunday": []}}, "sunday is given twice"),
        ({"weekdays": []}, "weekdays: expected an object keyed by weekday name"),
        ({"weekdays": {"monday": None}}, "weekdays.monday: expected a list of windows"),
        ({"dates": {"2026-13-01": []}}, "'2026-13-01' is not a date; use YYYY-MM-DD"),
        ({"dates": {"12/25/2026": []}}, "'12/25/2026' is not a date"),
        ({"dates": {"20261225": []}}, "'20261225' is not a date"),
        ({"dates": ["2026-12-25"]}, "dates: expected an object keyed by YYYY-MM-DD"),
    ],
)
def test_invalid_rule_dicts_are_rejected_with_a_clear_message(data: Any, message: str) -> None:
    with pytest.raises(SaleHoursError) as raised:
        sale_hours_from_dict(data)

    assert any(message in error for error in raised.value.errors), raised.value.errors
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_every_problem_is_reported_at_once() -> None:
    data = {
        "default": [{"opens": "7", "closes": "24:00"}],
        "weekdays": {"funday": []},
        "dates": {"someday": []},
    }

    with pytest.raises(SaleHoursError) as raised:
        sale_hours_from_dict(data)

    assert len(raised.value.errors) == 3


TIMES = st.integers(min_value=0, max_value=MINUTES_PER_DAY - 1).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")


@st.composite
def window_dicts(draw: st.DrawFn) -> dict[str, str]:
    opens = draw(TIMES)
    closes = draw(TIMES.filter(lambda t: t != opens) | st.just("24:00"))
    return {"opens": opens, "closes": closes}


DAY_RULES = st.lists(window_dicts(), max_size=3)
HOURS_DICTS = st.fixed_dictionaries(
    {
        "default": DAY_RULES,
        "weekdays": st.dictionaries(st.sampled_from(["monday", "saturday", "sunday"]), DAY_RULES),
        "dates": st.dictionaries(
            st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)).map(date.isoformat), DAY_RULES
        ),
    }
)


@given(HOURS_DICTS)
@PROPERTY_SETTINGS
def test_sale_hours_survive_a_json_round_trip(data: dict[str, Any]) -> None:
    hours = sale_hours_from_dict(data)

    assert sale_hours_from_dict(hours.to_dict()) == hours


def reference_allowed(window: SaleWindow, day_before_open: bool, second: int) -> bool:
    # Spelled out minute by minute, independently of the implementation's interval arithmetic.
    minute = second // 60
    if window.crosses_midnight:
        return minute >= window.opens or (day_before_open and minute < window.closes)
    return window.opens <= minute < window.closes


@given(window_dicts(), st.integers(min_value=0, max_value=24 * 3600 - 1))
@PROPERTY_SETTINGS
def test_single_window_agrees_with_a_minute_by_minute_reference(window: dict[str, str], second: int) -> None:
    hours = sale_hours_from_dict({"default": [window]})
    moment = datetime.combine(MONDAY, datetime.min.time()) + timedelta(seconds=second)

    assert sale_allowed_at(hours, moment) == reference_allowed(hours.default[0], True, second)
