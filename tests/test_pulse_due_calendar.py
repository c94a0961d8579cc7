"""One `DueCalendar` shared by many initiatives answers as `due_period` does for each alone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import product

import pytest

from bot.pulses.schedule import DueCalendar, PromptTiming, due_period
from storage.models import Holiday, Initiative, Person, PlanSettings

MONDAY = datetime(2027, 1, 4, 15, tzinfo=UTC)  # Monday 10:00 in New York, 15:00 in London
ZONES = ("America/New_York", "Asia/Tokyo", "Europe/London", None, "Not/AZone")
CADENCES = (None, "0 9 * * mon", "0 16 * * *", "30 8 * * mon-fri", "every monday")
AWAY = ((None, None), (date(2027, 1, 4), date(2027, 1, 8)), (date(2027, 1, 5), None))
SINCE = (datetime(2020, 1, 1, tzinfo=UTC), MONDAY - timedelta(hours=2))
LINKED = (None, MONDAY - timedelta(days=30), MONDAY - timedelta(minutes=30))


@pytest.mark.parametrize(
    "now",
    [
        MONDAY,
        MONDAY + timedelta(hours=5),
        MONDAY + timedelta(days=2, hours=3),
        MONDAY - timedelta(hours=14),
    ],
)
@pytest.mark.parametrize("holidays", [[], [Holiday(start=date(2027, 1, 4), end=date(2027, 1, 4))]])
def test_a_shared_calendar_gives_every_initiative_its_own_answer(now, holidays):
    plan = PlanSettings(id=1, timezone="America/New_York", default_pulse="0 9 * * mon")
    timing = PromptTiming.default()
    calendar = DueCalendar(plan, holidays, now, timing)
    answers = set()
    for n, (tz, pulse, (away_from, away_until), since, linked) in enumerate(
        product(ZONES, CADENCES, AWAY, SINCE, LINKED)
    ):
        owner = Person(
            id=n,
            slack_id=f"U{n}",
            name="Owner",
            tz=tz,
            away_from=away_from,
            away_until=away_until,
            slack_linked_at=linked,
        )
        initiative = Initiative(
            id=n, key=f"i-{n}", title="I", owner_id=n, team_id=1, pulse=pulse, active_since=since
        )
        alone = due_period(initiative, owner, plan, holidays, now, timing)
        shared = calendar.due(
            initiative_key=initiative.key,
            pulse=pulse,
            active_since=since,
            owner_tz=tz,
            slack_linked_at=linked,
            away_from=away_from,
            away_until=away_until,
        )
        assert shared == alone, (tz, pulse, away_from, away_until, since, linked)
        answers.add(alone is None)
    if not holidays:  # the mix really has both due and not-due initiatives
        assert answers == {True, False}
