"""Initiative health and the one definition of a missed milestone (plan timezone, explicit now)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from bot.health import due_date_ended, initiative_health, milestone_missed
from bot.kpis import Health


@dataclass
class M:
    due: date
    status: str = "open"
    archived: bool = False


def test_a_milestone_is_missed_once_its_day_has_ended_in_the_plans_timezone():
    due = M(due=date(2027, 1, 15))
    # 04:59 UTC on the 16th is still 23:59 on the 15th in New York.
    assert not milestone_missed(due, datetime(2027, 1, 16, 4, 59, tzinfo=UTC), "America/New_York")
    assert milestone_missed(due, datetime(2027, 1, 16, 5, 0, tzinfo=UTC), "America/New_York")
    # In Tokyo the 15th ended at 15:00 UTC on the 15th.
    assert not milestone_missed(due, datetime(2027, 1, 15, 14, 59, tzinfo=UTC), "Asia/Tokyo")
    assert milestone_missed(due, datetime(2027, 1, 15, 15, 0, tzinfo=UTC), "Asia/Tokyo")


@pytest.mark.parametrize("status", ["done", "descoped"])
def test_done_or_descoped_milestones_are_never_missed(status):
    assert not milestone_missed(
        M(due=date(2026, 1, 1), status=status), datetime(2027, 1, 1, tzinfo=UTC), "UTC"
    )


def test_archived_milestones_are_never_missed():
    assert not milestone_missed(
        M(due=date(2026, 1, 1), archived=True), datetime(2027, 1, 1, tzinfo=UTC), "UTC"
    )


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        due_date_ended(date(2026, 1, 1), datetime(2027, 1, 1), "UTC")


def test_initiative_health_is_the_worst_signal():
    assert (
        initiative_health(pulse_status=None, kpi_healths=[], any_milestone_missed=False)
        is Health.NO_DATA
    )
    assert (
        initiative_health(
            pulse_status="on_track", kpi_healths=[Health.NO_DATA], any_milestone_missed=False
        )
        is Health.ON_TRACK
    )
    assert (
        initiative_health(
            pulse_status="on_track",
            kpi_healths=[Health.ON_TRACK, Health.AT_RISK],
            any_milestone_missed=False,
        )
        is Health.AT_RISK
    )
    assert (
        initiative_health(pulse_status="at_risk", kpi_healths=[], any_milestone_missed=False)
        is Health.AT_RISK
    )


def test_a_missed_milestone_makes_an_initiative_off_track_whatever_the_owner_says():
    assert (
        initiative_health(
            pulse_status="on_track", kpi_healths=[Health.ON_TRACK], any_milestone_missed=True
        )
        is Health.OFF_TRACK
    )


def test_an_unknown_plan_timezone_counts_deadlines_in_utc():
    due = M(due=date(2027, 1, 15))
    assert not milestone_missed(due, datetime(2027, 1, 15, 23, 59, tzinfo=UTC), "Not/AZone")
    assert milestone_missed(due, datetime(2027, 1, 16, 0, 0, tzinfo=UTC), "Not/AZone")
