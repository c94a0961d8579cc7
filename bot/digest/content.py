"""What the weekly digest says about a week: the plan's health and the leaders' own discipline.

`build_digest(session, week_end)` reads the plan as it stands at `week_end` and what happened in
the seven days before it. Every list is in the order the digest shows it; templates/digest.py
words it and leaves out what is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.alerts.conditions import find_problems
from bot.digest.calibration import LOOK_BACK, Calibration, calibrate, quarter_start
from bot.digest.metrics import Figure, Window, WindowFacts, discipline
from bot.kpis import Health
from bot.reports import KpiScorecard, health_of, kpi_scorecard
from bot.timezones import local_date, plan_zone
from bot.work.burnup import Burnup
from bot.work.progress import milestone_burnups
from storage import digest as q
from storage.plan import plan_settings
from storage.reports import health_inputs
from storage.work import open_linked_milestones
from templates.ids import AlertKinds

WEEK = timedelta(weeks=1)
BURNUP_WEEKS = 4
HEALTH_ORDER = (Health.OFF_TRACK, Health.AT_RISK, Health.NO_DATA, Health.ON_TRACK)


@dataclass(frozen=True)
class InitiativeHealth:
    key: str
    title: str
    health: Health


@dataclass(frozen=True)
class MilestoneProblem:
    """A missed or at-risk milestone, as detection found it (its facts, dates as dates)."""

    facts: dict[str, Any]
    days: int  # days late for a missed one, days left for one at risk


@dataclass(frozen=True)
class WorkLine:
    """A milestone due in the next weeks with linked work, and that work's burn-up."""

    title: str
    due: date
    work: Burnup


@dataclass
class Digest:
    organization: str
    window: Window
    first_day: date  # the week's first and last days in the plan's timezone
    last_day: date
    scorecard: KpiScorecard
    initiatives: list[InitiativeHealth]  # worst first
    missed: list[MilestoneProblem]
    at_risk: list[MilestoneProblem]
    waiting: list[q.WaitingDependency]  # oldest request first
    decided: list[q.DecidedSlip]
    open_polls: list[q.OpenPoll]
    dark: list[tuple[Any, Any]]  # (initiative, owner), longest silent first
    discipline: list[Figure]
    drift: list[q.ObjectiveDrift]  # objectives the decisions moved
    calibration: Calibration
    burnups: list[WorkLine]  # milestones due within BURNUP_WEEKS that link tracker work

    def health_counts(self) -> dict[Health, int]:
        counts = {health: 0 for health in HEALTH_ORDER}
        for line in self.initiatives:
            counts[line.health] += 1
        return {health: n for health, n in counts.items() if n}


def _window_facts(session: Session, window: Window) -> WindowFacts:
    return WindowFacts(
        pulses=q.pulse_counts(session=session, start=window.start, end=window.end),
        ack_waits=q.acknowledgement_waits(session=session, start=window.start, end=window.end),
        decisions=q.decisions_between(session=session, start=window.start, end=window.end),
    )


def _initiatives(session: Session, now: datetime, tz: str, day: date) -> list[InitiativeHealth]:
    rows = q.live_initiative_ids(session=session)
    inputs = health_inputs(session=session, initiative_ids=[i for i, _, _ in rows])
    lines = [
        InitiativeHealth(key, title, health_of(inputs[initiative_id], now, tz, day))
        for initiative_id, key, title in rows
    ]
    return sorted(lines, key=lambda line: (HEALTH_ORDER.index(line.health), line.key))


def _milestone_problems(session: Session, now: datetime, today: date) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {
        AlertKinds.MILESTONE_MISSED: [],
        AlertKinds.MILESTONE_AT_RISK: [],
    }
    for finding in find_problems(session, now):
        if finding.kind in found:
            facts = dict(finding.found)
            due: date = facts["due"]
            days = (
                (today - due).days
                if finding.kind == AlertKinds.MILESTONE_MISSED
                else (due - today).days
            )
            found[finding.kind].append(MilestoneProblem(facts=facts, days=days))
    for problems in found.values():
        problems.sort(key=lambda p: (p.facts["due"], p.facts["milestone_key"]))
    return found


def build_digest(session: Session, week_end: datetime) -> Digest:
    """The digest of the seven days up to `week_end` (aware), from the plan as it is at `week_end`."""
    settings = plan_settings(session=session)
    tz = plan_zone(settings.timezone)
    window = Window(week_end - WEEK, week_end)
    # The last instant inside the window names its last day (a digest at Friday 16:00 covers
    # the Friday before, up to this Friday afternoon).
    last_day = local_date(week_end - timedelta(microseconds=1), tz)
    today = local_date(week_end, tz)
    problems = _milestone_problems(session, week_end, today)
    scorecard = kpi_scorecard(session, week_end)
    first_of_quarter = quarter_start(today)
    came_due = q.milestones_come_due(
        session=session,
        first=first_of_quarter,
        last=today - timedelta(days=1),  # a date "came due" once its day has ended
        look_back=LOOK_BACK,
    )
    return Digest(
        organization=settings.organization,
        window=window,
        first_day=local_date(window.start, tz),
        last_day=last_day,
        scorecard=scorecard,
        initiatives=_initiatives(session, week_end, settings.timezone, today),
        missed=problems[AlertKinds.MILESTONE_MISSED],
        at_risk=problems[AlertKinds.MILESTONE_AT_RISK],
        waiting=q.unacknowledged_dependencies(session=session),
        decided=q.decisions_between(session=session, start=window.start, end=window.end),
        open_polls=q.open_polls(session=session),
        dark=q.dark_initiatives(session=session),
        discipline=discipline(
            _window_facts(session, window), _window_facts(session, window.before())
        ),
        drift=[d for d in q.drift_by_objective(session=session) if d.days_delayed or d.descoped],
        calibration=calibrate(came_due, first_of_quarter, tz),
        burnups=_burnups(session, week_end, today),
    )


def _burnups(session: Session, now: datetime, today: date) -> list[WorkLine]:
    horizon = today + timedelta(weeks=BURNUP_WEEKS)
    due = sorted(
        (m for m in open_linked_milestones(session=session) if today <= m.due <= horizon),
        key=lambda m: (m.due, m.key),
    )
    burnups = milestone_burnups(session, due, now, today)
    return [WorkLine(m.title, m.due, burnups[m.id or 0]) for m in due]
