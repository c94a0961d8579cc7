"""The one timezone fallback: a person's Slack zone, else the plan's, else UTC; never an exception."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.timezones import UTC_ZONE, _known, local_date, person_zone, plan_zone, zone

# 20:00 UTC on a Tuesday: still Tuesday in New York, already Wednesday in Tokyo.
LATE_TUESDAY = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def test_the_first_real_zone_wins():
    assert zone("Asia/Tokyo", "America/New_York") == ZoneInfo("Asia/Tokyo")
    assert zone(None, "", "America/New_York") == ZoneInfo("America/New_York")


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../etc/passwd", "not a zone"])
def test_an_unknown_name_falls_back_and_is_logged(name, caplog):
    # Each bad name is logged once per process (the lookup is cached): start from a clean cache.
    _known.cache_clear()
    with caplog.at_level(logging.WARNING, logger="bot.timezones"):
        assert zone(name, "Europe/Paris") == ZoneInfo("Europe/Paris")
        assert zone(name) == UTC_ZONE
    assert any(name in record.getMessage() for record in caplog.records)


def test_nothing_usable_is_utc():
    assert zone() == UTC_ZONE
    assert zone(None, "") == UTC_ZONE


def test_a_person_is_in_their_own_zone_else_the_plans_else_utc():
    assert person_zone("Asia/Tokyo", "America/New_York") == ZoneInfo("Asia/Tokyo")
    assert person_zone(None, "America/New_York") == ZoneInfo("America/New_York")
    assert person_zone("Bad/Zone", "America/New_York") == ZoneInfo("America/New_York")
    assert person_zone(None, None) == UTC_ZONE


def test_the_plan_zone_is_utc_when_unusable():
    assert plan_zone("America/New_York") == ZoneInfo("America/New_York")
    assert plan_zone("") == UTC_ZONE
    assert plan_zone("Bad/Zone") == UTC_ZONE


def test_the_local_date_is_the_calendar_day_there():
    assert local_date(LATE_TUESDAY, ZoneInfo("America/New_York")) == date(2026, 11, 24)
    assert local_date(LATE_TUESDAY, ZoneInfo("Asia/Tokyo")) == date(2026, 11, 25)
    assert local_date(LATE_TUESDAY, UTC_ZONE) == date(2026, 11, 24)


def test_the_local_date_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"):
        local_date(datetime(2026, 11, 24, 20, 0), UTC_ZONE)
