"""Acknowledgement deadlines: business days in the plan's timezone, at their exact boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.business_days import ack_deadline, is_business_day

NY = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("posted_at", "days", "deadline", "why"),
    [
        # Friday 2027-01-08, 10:00 New York: Monday and Tuesday count; Tuesday's midnight ends it.
        (utc(2027, 1, 8, 15), 2, utc(2027, 1, 13, 5), "over a weekend"),
        # 23:59 on Friday in New York is already Saturday in UTC: the plan's day is what counts.
        (utc(2027, 1, 9, 4, 59), 2, utc(2027, 1, 13, 5), "the plan's day, not UTC's"),
        # A minute later it is Saturday in New York too: still Monday and Tuesday.
        (utc(2027, 1, 9, 5, 0), 2, utc(2027, 1, 13, 5), "posted on a Saturday"),
        (utc(2027, 1, 10, 15), 1, utc(2027, 1, 12, 5), "posted on a Sunday"),
        (utc(2027, 1, 11, 15), 1, utc(2027, 1, 13, 5), "a Monday post counts from Tuesday"),
        (utc(2027, 1, 8, 15), 0, utc(2027, 1, 9, 5), "0 days: the end of the posting day"),
        (utc(2027, 1, 9, 15), 0, utc(2027, 1, 10, 5), "0 days on a Saturday: still that day"),
        (utc(2027, 1, 8, 15), 5, utc(2027, 1, 16, 5), "a whole working week"),
    ],
)
def test_deadline(posted_at, days, deadline, why):
    assert ack_deadline(posted_at, days, NY, []) == deadline, why


def test_a_plan_holiday_is_skipped_inclusive_at_both_ends():
    friday = utc(2027, 1, 8, 15)
    holiday = [(date(2027, 1, 11), date(2027, 1, 12))]
    # Monday and Tuesday off: Wednesday and Thursday count.
    assert ack_deadline(friday, 2, NY, holiday) == utc(2027, 1, 15, 5)
    one_day = [(date(2027, 1, 12), date(2027, 1, 12))]
    assert ack_deadline(friday, 2, NY, one_day) == utc(2027, 1, 14, 5)
    # A holiday on the posting day changes nothing: that day is never counted.
    assert ack_deadline(friday, 1, NY, [(date(2027, 1, 8), date(2027, 1, 8))]) == utc(
        2027, 1, 12, 5
    )
    # A holiday over a weekend only: nothing changes either.
    weekend = [(date(2027, 1, 9), date(2027, 1, 10))]
    assert ack_deadline(friday, 2, NY, weekend) == utc(2027, 1, 13, 5)


def test_daylight_saving_time_moves_midnight_in_utc():
    # New York springs forward on Sunday 2027-03-14: Friday's midnight is 05:00 UTC, Monday's 04:00.
    friday = utc(2027, 3, 12, 15)
    assert ack_deadline(friday, 0, NY, []) == utc(2027, 3, 13, 5)
    assert ack_deadline(friday, 1, NY, []) == utc(2027, 3, 16, 4)
    # And falls back on Sunday 2027-11-07.
    assert ack_deadline(utc(2027, 11, 5, 15), 1, NY, []) == utc(2027, 11, 9, 5)


def test_other_timezones_and_a_bad_one():
    friday_in_tokyo = utc(2027, 1, 8, 1)  # 10:00 Friday in Tokyo
    # Monday in Tokyo ends at 15:00 UTC that day.
    assert ack_deadline(friday_in_tokyo, 1, "Asia/Tokyo", []) == utc(2027, 1, 11, 15)
    # An unknown timezone name never stops a rule: UTC.
    assert ack_deadline(utc(2027, 1, 8, 15), 1, "Mars/Olympus", []) == utc(2027, 1, 12, 0)
    assert ack_deadline(utc(2027, 1, 8, 15), 1, None, []) == utc(2027, 1, 12, 0)


def test_a_zone_whose_clocks_skip_midnight():
    # Santiago starts summer time at 00:00 on Sunday 2026-09-06 (clocks jump to 01:00): the end
    # of Saturday is that instant, 04:00 UTC.
    saturday = utc(2026, 9, 5, 15)
    assert ack_deadline(saturday, 0, "America/Santiago", []) == utc(2026, 9, 6, 4)


def test_negative_days_and_naive_times_are_bugs():
    with pytest.raises(ValueError):
        ack_deadline(utc(2027, 1, 8, 15), -1, NY, [])
    with pytest.raises(ValueError):
        ack_deadline(datetime(2027, 1, 8, 15), 1, NY, [])


def test_is_business_day():
    assert is_business_day(date(2027, 1, 8), [])
    assert not is_business_day(date(2027, 1, 9), [])
    assert not is_business_day(date(2027, 1, 10), [])
    assert not is_business_day(date(2027, 1, 11), [(date(2027, 1, 10), date(2027, 1, 11))])
