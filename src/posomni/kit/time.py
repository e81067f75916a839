"""Time helpers. Timestamps are stored in UTC; business dates are always the store's local date."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utcnow() -> datetime:
    return datetime.now(UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {name!r}") from None


def local_now(tz_name: str, now: datetime | None = None) -> datetime:
    moment = now if now is not None else utcnow()
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return moment.astimezone(zone(tz_name))


def local_date(tz_name: str, now: datetime | None = None) -> date:
    return local_now(tz_name, now).date()


def is_valid_timezone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return False
    return True


def years_before(moment: datetime, years: int) -> datetime:
    """The same calendar moment `years` earlier; 29 February becomes 28 February in a common year."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)
