"""When pulses are due: cron in the owner's timezone, DST, away dates, holidays, working hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from bot.errors import ConfigurationError
from bot.pulses.schedule import WorkingHours, current_period, due_period, valid_cron
from storage.models import Holiday, Initiative, Person, PlanSettings

NY = ZoneInfo("America/New_York")
MONDAY_9 = "0 9 * * mon"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def plan(**fields: object) -> PlanSettings:
    return PlanSettings(id=1, timezone="America/New_York", default_pulse=MONDAY_9, **fields)


def owner(tz: str | None = "America/New_York", **fields: object) -> Person:
    values: dict[str, object] = {"id": 1, "slack_id": "UALICE", "name": "Alice", "tz": tz}
    return Person(**{**values, **fields})


LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def initiative(**fields: object) -> Initiative:
    values: dict[str, object] = {"active_since": LONG_AGO, **fields}
    return Initiative(id=1, key="portal-beta", title="Portal beta", owner_id=1, team_id=1, **values)


def test_period_is_latest_fire_at_or_before_now_until_the_next_fire():
    period = current_period(MONDAY_9, NY, utc(2027, 1, 6, 12))  # a Wednesday
    assert period.start == utc(2027, 1, 4, 14)  # Monday 09:00 EST
    assert period.end == utc(2027, 1, 11, 14)
    assert period.key == "2027-01-04T09:00"  # the owner's wall time names the period
    # Exactly at the fire the new period has begun; a second before, the old one still runs.
    assert current_period(MONDAY_9, NY, utc(2027, 1, 11, 14)).start == utc(2027, 1, 11, 14)
    assert current_period(MONDAY_9, NY, utc(2027, 1, 11, 13, 59, 59)).start == utc(2027, 1, 4, 14)


@pytest.mark.parametrize(
    ("tz", "expected_start"),
    [
        ("Asia/Tokyo", utc(2027, 1, 11, 0)),  # Monday 09:00 JST is Monday 00:00 UTC
        ("America/Los_Angeles", utc(2027, 1, 11, 17)),  # Monday 09:00 PST
        ("America/New_York", utc(2027, 1, 11, 14)),
        (None, utc(2027, 1, 11, 14)),  # no Slack timezone yet: the plan's (New York)
        ("Not/AZone", utc(2027, 1, 11, 14)),  # garbage from Slack: the plan's as well
    ],
)
def test_each_owner_gets_the_prompt_at_their_own_local_time(tz, expected_start):
    person = owner(tz)
    # A minute before, last week's period is nearly over: too late for its prompt.
    just_before = due_period(
        initiative(), person, plan(), [], expected_start - timedelta(minutes=1)
    )
    assert just_before is None
    at_time = due_period(initiative(), person, plan(), [], expected_start)
    assert at_time is not None and at_time.start == expected_start


def test_dst_week_keeps_the_local_hour():
    # US clocks go forward on Sunday 2027-03-14: Monday 09:00 moves from 14:00 to 13:00 UTC.
    before = current_period(MONDAY_9, NY, utc(2027, 3, 12, 12))
    after = current_period(MONDAY_9, NY, utc(2027, 3, 15, 13))
    assert before.start == utc(2027, 3, 8, 14)
    assert before.end == utc(2027, 3, 15, 13)  # the period is an hour short, as the wall clock is
    assert after.start == utc(2027, 3, 15, 13)
    # London moves two weeks later: in between, a London owner is still on GMT.
    london = current_period(MONDAY_9, ZoneInfo("Europe/London"), utc(2027, 3, 22, 9))
    assert london.start == utc(2027, 3, 22, 9)
    assert current_period(MONDAY_9, ZoneInfo("Europe/London"), utc(2027, 3, 29, 8)).start == utc(
        2027, 3, 29, 8
    )
    # Autumn: 2027-11-07 clocks go back; Monday 09:00 EST is 14:00 UTC again.
    assert current_period(MONDAY_9, NY, utc(2027, 11, 8, 14)).start == utc(2027, 11, 8, 14)
    assert current_period(MONDAY_9, NY, utc(2027, 11, 8, 13)).start == utc(2027, 11, 1, 13)


def test_skipped_and_repeated_wall_times_fire_exactly_once():
    # 02:30 does not exist on 2027-03-14 in New York: the fire lands just after the gap.
    spring = current_period("30 2 * * *", NY, utc(2027, 3, 14, 12))
    assert spring.start == utc(2027, 3, 14, 7, 30)  # 03:30 EDT
    # 01:30 happens twice on 2027-11-07: only the first one is a fire.
    first = current_period("30 1 * * *", NY, utc(2027, 11, 7, 5, 45))  # 01:45 EDT
    second = current_period("30 1 * * *", NY, utc(2027, 11, 7, 6, 45))  # 01:45 EST
    assert first.start == second.start == utc(2027, 11, 7, 5, 30)
    assert first.end == second.end == utc(2027, 11, 8, 6, 30)


def test_initiative_cadence_overrides_the_plan_default():
    person = owner()
    daily = due_period(initiative(pulse="0 16 * * *"), person, plan(), [], utc(2027, 1, 6, 22))
    assert daily is not None and daily.start == utc(2027, 1, 6, 21)
    # A broken cron in the plan falls back to the default rather than stopping the tick.
    broken = due_period(initiative(pulse="every monday"), person, plan(), [], utc(2027, 1, 6, 22))
    assert broken is not None and broken.start == utc(2027, 1, 4, 14)
    assert not valid_cron("0 9 * * mon *")  # six fields (seconds) are not the plan's format
    assert valid_cron("*/15 9-17 * * 1-5")


@pytest.mark.parametrize(
    ("initiative_fields", "owner_fields"),
    [
        ({"archived": True}, {}),
        ({"status": "paused"}, {}),
        ({}, {"active": False}),
        ({}, {"slack_id": None}),
    ],
)
def test_no_pulse_for_archived_paused_or_unreachable(initiative_fields, owner_fields):
    person = owner(**owner_fields)
    now = utc(2027, 1, 4, 15)
    assert due_period(initiative(**initiative_fields), person, plan(), [], now) is None


def test_away_owner_skipped_on_the_day_the_period_starts_in_their_timezone():
    now = utc(2027, 1, 4, 1)  # Monday 10:00 in Tokyo, still Sunday in New York
    tokyo = owner("Asia/Tokyo", away_from=date(2027, 1, 4), away_until=date(2027, 1, 8))
    assert due_period(initiative(), tokyo, plan(), [], now) is None
    # Inclusive at both ends, and read on the period's first day only.
    back_on_monday = owner("Asia/Tokyo", away_from=date(2026, 12, 28), away_until=date(2027, 1, 3))
    assert due_period(initiative(), back_on_monday, plan(), [], now) is not None
    last_day = owner("Asia/Tokyo", away_from=date(2026, 12, 28), away_until=date(2027, 1, 4))
    assert due_period(initiative(), last_day, plan(), [], now) is None
    leaves_tuesday = owner("Asia/Tokyo", away_from=date(2027, 1, 5), away_until=date(2027, 1, 9))
    assert due_period(initiative(), leaves_tuesday, plan(), [], now) is not None


def test_plan_holiday_on_the_first_day_means_no_pulse_that_period():
    holidays = [Holiday(start=date(2027, 1, 4), end=date(2027, 1, 4), name="Office closed")]
    assert due_period(initiative(), owner(), plan(), holidays, utc(2027, 1, 5, 15)) is None
    assert due_period(initiative(), owner(), plan(), holidays, utc(2027, 1, 11, 15)) is not None


def test_working_hours_parse_and_contain():
    hours = WorkingHours.parse("09:00-18:00", "mon-fri")
    assert hours.days == frozenset(range(5)) and hours.start == time(9) and hours.end == time(18)
    tokyo = ZoneInfo("Asia/Tokyo")
    assert hours.contains(tokyo, utc(2027, 1, 4, 0))  # Monday 09:00 in Tokyo
    assert not hours.contains(tokyo, utc(2027, 1, 3, 23, 59))  # Monday 08:59
    assert not hours.contains(tokyo, utc(2027, 1, 4, 9))  # Monday 18:00: the end is exclusive
    assert not hours.contains(tokyo, utc(2027, 1, 9, 1))  # Saturday
    weekend_shift = WorkingHours.parse("10:00-16:00", "fri-sun, wed")
    assert weekend_shift.days == frozenset({4, 5, 6, 2})
    for hours_text, days_text in [
        ("9-18", "mon-fri"),
        ("18:00-09:00", "mon"),
        ("09:00-18:00", "mo-fr"),
    ]:
        with pytest.raises(ConfigurationError):
            WorkingHours.parse(hours_text, days_text)


def test_due_period_reads_rows_from_the_database(engine):
    # The same rules on real rows, so the model defaults (status, active) are what the rules expect.
    from tests import factories

    with Session(engine) as session:
        factories.plan_settings(session)
        person = factories.person(session, tz="America/Los_Angeles")
        team = factories.team(session, lead=person)
        row = factories.initiative(session, owner=person, team=team)
        period = due_period(row, person, session.get(PlanSettings, 1), [], utc(2027, 1, 4, 17))
        assert period is not None and period.start == utc(2027, 1, 4, 17)
