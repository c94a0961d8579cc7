"""When the first and the late prompts go out: a plan imported by an operator, ticks at chosen times.

The plan below is imported through the real importer, its owners (London, New York, Tokyo) are
linked by the real directory sync against the stand-in, and each tick is `deliver_pulses` at an
explicit `now`, as `planpulse tick` runs it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.directory import sync_people
from bot.planfile.importer import import_plan
from bot.planfile.validate import load_plan
from bot.pulses.away import clear_away, set_away
from bot.pulses.delivery import deliver_pulses
from standin.workspace import User
from storage.models import Initiative, PulseRequest
from templates.ids import MessageEvents

PLAN = """\
organization: Harbor Insurance
timezone: Europe/London
channels: {decisions: "#exec-decisions", alerts: "#it-delivery"}
leaders: [UCFO]
defaults: {pulse: "0 9 * * mon"}
teams:
  - {key: it, name: IT Delivery, channel: "#it-delivery", lead: UCFO}
objectives:
  - {key: claims, title: Faster claims, owner: UCFO}
initiatives:
  - {key: london, title: London pilot, objective: claims, owner: UCFO, team: it}
  - {key: newyork, title: New York pilot, objective: claims, owner: UALICE, team: it}
  - {key: tokyo, title: Tokyo pilot, objective: claims, owner: UCIO, team: it}
"""
OWNERS = {"london": "UCFO", "newyork": "UALICE", "tokyo": "UCIO"}
# Monday 09:00 in each owner's own time, the week of 2027-01-04 (winter: GMT, EST, JST).
MONDAY_FIRE = {
    "UCIO": datetime(2027, 1, 4, 0, tzinfo=UTC),
    "UCFO": datetime(2027, 1, 4, 9, tzinfo=UTC),
    "UALICE": datetime(2027, 1, 4, 14, tzinfo=UTC),
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def imported(services, tmp_path: Path, at: datetime, plan_text: str = PLAN) -> None:
    """The operator imports the plan at `at`; the tick's directory step links the owners."""
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text, encoding="utf-8")
    import_plan(services.engine, load_plan(str(path)), actor="cli:test", now=at)
    sync_people(services, at)


def prompted(standin) -> list[str]:
    """Owners (Slack IDs) who got a pulse DM, in the order they got it."""
    return [
        c.params["channel"]
        for c in standin.calls("chat.postMessage")
        if c.ok and (c.params.get("metadata") or {}).get("event_type") == MessageEvents.PULSE_PROMPT
    ]


def periods(engine) -> set[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(PulseRequest, Initiative).join(Initiative))
        return {(initiative.key, pulse.period) for pulse, initiative in rows}


def tick(services, at: datetime) -> int:
    return deliver_pulses(services, at).sent


def test_import_on_sunday_prompts_nobody_until_each_owners_monday_fire(services, standin, tmp_path):
    imported(services, tmp_path, utc(2027, 1, 3, 12))  # Sunday noon UTC
    assert tick(services, utc(2027, 1, 3, 23, 58)) == 0  # the week that began on 28 December
    assert tick(services, utc(2027, 1, 3, 23, 59)) == 0  # 08:59 Monday in Tokyo
    for owner, fire in sorted(MONDAY_FIRE.items(), key=lambda item: item[1]):
        assert tick(services, fire - timedelta(minutes=1)) == 0, owner
        assert tick(services, fire) == 1, owner
    assert prompted(standin) == ["UCIO", "UCFO", "UALICE"]
    assert periods(services.engine) == {
        (key, "2027-01-04T09:00") for key in ("london", "newyork", "tokyo")
    }
    assert tick(services, utc(2027, 1, 5, 10)) == 0  # one prompt per period


def test_import_on_wednesday_prompts_nobody_that_week(services, standin, tmp_path):
    imported(services, tmp_path, utc(2027, 1, 6, 10))
    for hour in (10, 11, 15):
        assert tick(services, utc(2027, 1, 6, hour)) == 0
    assert tick(services, utc(2027, 1, 8, 12)) == 0  # Friday, inside everyone's working day
    assert prompted(standin) == []
    assert tick(services, utc(2027, 1, 11, 9)) == 1  # London's next Monday fire
    assert prompted(standin) == ["UCFO"]


@pytest.fixture
def plan_of_last_week(services, standin, tmp_path):
    """Imported the Thursday before, so the Monday of 2027-01-04 is every owner's first fire."""
    imported(services, tmp_path, utc(2026, 12, 31, 12))
    return services


def test_back_while_the_working_day_is_on_sends_the_late_prompt_at_once(plan_of_last_week, standin):
    # Down over the Monday 09:00 fires; back at 15:30 London (10:30 New York, 00:30 Tuesday Tokyo).
    assert tick(plan_of_last_week, utc(2027, 1, 4, 15, 30)) == 2
    assert sorted(prompted(standin)) == ["UALICE", "UCFO"]
    # Tokyo's working day ended hours ago: its owner is asked on Tuesday morning, their time.
    assert tick(plan_of_last_week, utc(2027, 1, 4, 23, 59)) == 0  # 08:59 Tuesday in Tokyo
    assert tick(plan_of_last_week, utc(2027, 1, 5, 0, 0)) == 1  # 09:00 Tuesday in Tokyo
    assert prompted(standin)[-1] == "UCIO"


def test_back_after_the_working_day_waits_for_the_next_working_morning(plan_of_last_week, standin):
    # Back at 19:30 London on Monday: not at 19:30, nor at 23:58, but at 09:00 on Tuesday.
    for at in (utc(2027, 1, 4, 19, 30), utc(2027, 1, 4, 23, 58), utc(2027, 1, 5, 8, 59)):
        tick(plan_of_last_week, at)
        assert "UCFO" not in prompted(standin), at
    tick(plan_of_last_week, utc(2027, 1, 5, 9, 0))
    assert prompted(standin).count("UCFO") == 1


def test_a_prompt_inside_the_grace_goes_out_whatever_the_hour(plan_of_last_week, standin):
    # A midnight cadence is on time at midnight: the working-hours rule is for late prompts only.
    with Session(plan_of_last_week.engine) as session:
        london = session.exec(select(Initiative).where(Initiative.key == "london")).one()
        london.pulse = "0 0 * * mon"
        session.add(london)
        session.commit()
    assert tick(plan_of_last_week, utc(2027, 1, 4, 0, 59)) == 2  # Tokyo (late, 09:59) and London
    assert "UCFO" in prompted(standin)


def test_grace_is_a_setting(plan_of_last_week, standin):
    services = plan_of_last_week
    strict = type(services)(
        settings=services.settings.model_copy(
            update={"pulse_grace_minutes": 0, "working_hours": "10:00-18:00"}
        ),
        engine=services.engine,
        slack=services.slack,
    )
    assert tick(strict, MONDAY_FIRE["UCFO"] + timedelta(minutes=30)) == 0  # late, before 10:00
    assert tick(services, MONDAY_FIRE["UCFO"] + timedelta(minutes=30)) == 1  # within 60 min


def test_down_until_saturday_skips_that_week(plan_of_last_week, standin):
    assert tick(plan_of_last_week, utc(2027, 1, 9, 10)) == 0  # Saturday: nobody's working day
    assert tick(plan_of_last_week, utc(2027, 1, 10, 12)) == 0  # Sunday
    assert prompted(standin) == []
    assert tick(plan_of_last_week, utc(2027, 1, 11, 9)) == 1  # London's Monday fire
    assert periods(plan_of_last_week.engine) == {("london", "2027-01-11T09:00")}


@pytest.mark.parametrize(
    ("at", "asked"),
    [
        (utc(2027, 1, 9, 14, 59), True),  # Saturday 14:59 London: 42 h 1 min of 168 h remain
        (utc(2027, 1, 9, 15, 1), False),  # less than a quarter left: the next prompt is close
    ],
)
def test_late_prompt_dropped_once_less_than_a_quarter_of_its_period_remains(
    plan_of_last_week, standin, at, asked
):
    # Working every day, so that only the quarter rule can hold the prompt back.
    services = plan_of_last_week
    every_day = type(services)(
        settings=services.settings.model_copy(update={"working_days": "mon-sun"}),
        engine=services.engine,
        slack=services.slack,
    )
    deliver_pulses(every_day, at)
    assert ("UCFO" in prompted(standin)) is asked


def test_owner_back_from_away_mid_week_is_asked_at_the_next_fire(plan_of_last_week, standin):
    services = plan_of_last_week
    with Session(services.engine) as session:
        set_away(
            session,
            person="UCFO",
            start_text="2027-01-01",
            end_text="2027-01-08",
            now=utc(2026, 12, 31, 13),
        )
        session.commit()
    assert tick(services, MONDAY_FIRE["UCFO"]) == 0  # away on Monday
    with Session(services.engine) as session:
        clear_away(session, person="UCFO", now=utc(2027, 1, 6, 10))  # back on Wednesday
        session.commit()
    assert tick(services, utc(2027, 1, 6, 10, 1)) == 0  # this week's period began while away
    assert tick(services, utc(2027, 1, 7, 11)) == 0
    assert tick(services, utc(2027, 1, 11, 9)) == 1  # the next Monday
    assert prompted(standin).count("UCFO") == 1


def test_resumed_initiative_waits_for_its_next_fire(plan_of_last_week, standin, tmp_path):
    services = plan_of_last_week
    paused = PLAN.replace("owner: UCFO, team: it}", "owner: UCFO, team: it, status: paused}")
    imported(services, tmp_path, utc(2027, 1, 1, 12), plan_text=paused)
    assert tick(services, MONDAY_FIRE["UCFO"]) == 0  # paused at the fire
    resumed = PLAN.replace("owner: UCFO, team: it}", "owner: UCFO, team: it, status: active}")
    imported(services, tmp_path, utc(2027, 1, 5, 12), plan_text=resumed)  # on Tuesday
    assert tick(services, utc(2027, 1, 5, 13)) == 0
    assert tick(services, utc(2027, 1, 11, 9)) == 1


def test_owner_linked_in_slack_mid_week_is_asked_from_the_next_fire(services, standin, tmp_path):
    # The owner is named by e-mail and only found in Slack on Wednesday.
    by_email = PLAN.replace("owner: UCFO, team: it}", "owner: late@harbor.example, team: it}")
    imported(services, tmp_path, utc(2026, 12, 31, 12), plan_text=by_email)
    standin.workspace.add_user(
        User(
            id="ULATE",
            name="lee",
            real_name="Lee Late",
            email="late@harbor.example",
            tz="Europe/London",
        )
    )
    sync_people(services, utc(2027, 1, 6, 10))
    assert "ULATE" not in prompted(standin)
    assert tick(services, utc(2027, 1, 6, 10, 1)) == 0
    assert tick(services, utc(2027, 1, 11, 9)) == 1
    assert prompted(standin) == ["ULATE"]
