"""Business days in the plan's timezone: when an acknowledgement deadline ends."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.timezones import local_date, plan_zone

SATURDAY = 5  # date.weekday(): Saturday and Sunday are never business days


def is_business_day(day: date, holidays: Iterable[tuple[date, date]]) -> bool:
    """Monday to Friday, and not inside any plan holiday (inclusive ranges)."""
    if day.weekday() >= SATURDAY:
        return False
    return not any(start <= day <= end for start, end in holidays)


def ack_deadline(
    posted_at: datetime, days: int, plan_tz: str | None, holidays: Iterable[tuple[date, date]]
) -> datetime:
    """The end (midnight, plan timezone) of the `days`-th business day after the posting day.

    The posting day itself is not counted, whatever day it is; `days = 0` means the end of the
    posting day. Returned as aware UTC.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    ranges = list(holidays)
    zone = plan_zone(plan_tz)
    day = local_date(posted_at, zone)
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_business_day(day, ranges):
            counted += 1
    # Midnight that ends `day` is the first instant of the next one; a zone whose clocks skip
    # midnight (a DST gap) gets the instant the gap starts, fold=0 being the earlier offset.
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return end.astimezone(UTC)


# An owner's working hours, for deadlines counted in their time (a poll's framing window).
WORKDAY_START = time(9)
WORKDAY_END = time(17)


def after_working_hours(
    now: datetime, hours: float, tz: ZoneInfo, holidays: Iterable[tuple[date, date]]
) -> datetime:
    """The instant `hours` working hours after `now`: Monday to Friday, 09:00 to 17:00 in `tz`, holidays skipped.

    Time outside working hours does not count, so a slip seen on Friday evening is due on the
    next working day, never at night. Returned as aware UTC.
    """
    if hours < 0:
        raise ValueError("hours must not be negative")
    ranges = list(holidays)
    left = timedelta(hours=hours)
    cursor = now.astimezone(UTC)
    day = local_date(now, tz)
    while True:
        if is_business_day(day, ranges):
            opens = datetime.combine(day, WORKDAY_START, tzinfo=tz).astimezone(UTC)
            closes = datetime.combine(day, WORKDAY_END, tzinfo=tz).astimezone(UTC)
            start = max(cursor, opens)
            if start < closes:
                if start + left <= closes:
                    return start + left
                left -= closes - start
        day += timedelta(days=1)
        cursor = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
