"""An owner's working hours (Monday to Friday, 09:00 to 17:00 in their timezone, plan holidays skipped): when a framing window ends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.business_days import after_working_hours

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def ny(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=NEW_YORK)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (ny(2027, 1, 18, 10), 6, ny(2027, 1, 18, 16)),  # Monday, within the day
        (ny(2027, 1, 18, 10), 8, ny(2027, 1, 19, 10)),  # 7 hours Monday, 1 on Tuesday
        (ny(2027, 1, 18, 6), 8, ny(2027, 1, 18, 17)),  # before 9: counting starts at 9
        (ny(2027, 1, 22, 17, 30), 8, ny(2027, 1, 25, 17)),  # Friday evening: all of Monday
        (ny(2027, 1, 22, 16), 8, ny(2027, 1, 25, 16)),  # one hour Friday, seven on Monday
        (ny(2027, 1, 23, 12), 1, ny(2027, 1, 25, 10)),  # a Saturday counts nothing
        (ny(2027, 1, 18, 10), 40, ny(2027, 1, 25, 10)),  # a whole working week
        (ny(2027, 1, 18, 9, 30), 0.5, ny(2027, 1, 18, 10)),
    ],
)
def test_only_working_hours_count(start, hours, expected):
    got = after_working_hours(start, hours, NEW_YORK, [])
    assert got.tzinfo is UTC
    assert got == expected


def test_plan_holidays_are_skipped():
    holidays = [(date(2027, 1, 25), date(2027, 1, 26))]  # Monday and Tuesday off
    got = after_working_hours(ny(2027, 1, 22, 18), 8, NEW_YORK, holidays)
    assert got == ny(2027, 1, 27, 17)


def test_counted_in_the_owners_own_timezone():
    # 15:00 UTC on Monday is midnight in Tokyo: the owner's Tuesday 09:00-17:00 is the window.
    got = after_working_hours(datetime(2027, 1, 18, 15, tzinfo=UTC), 8, TOKYO, [])
    assert got == datetime(2027, 1, 19, 17, tzinfo=TOKYO)


def test_a_daylight_saving_change_keeps_the_local_hours():
    # New York springs forward on Sunday 14 March 2027: Monday's hours are still 09:00-17:00.
    got = after_working_hours(ny(2027, 3, 12, 16), 2, NEW_YORK, [])
    assert got == ny(2027, 3, 15, 10)
    assert got.astimezone(UTC).hour == 14  # EDT, one hour less behind UTC than on Friday


def test_negative_hours_are_refused():
    with pytest.raises(ValueError, match="negative"):
        after_working_hours(ny(2027, 1, 18, 10), -1, NEW_YORK, [])
