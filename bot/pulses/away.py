"""Out-of-office dates set with `/pulse away` and cleared with `/pulse back`: no pulses meanwhile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session

from bot import audit
from bot.errors import NotFound, UserError
from bot.problems import ProblemCode, problem
from bot.timezones import local_date, person_zone
from storage import people as queries
from storage.models import Person
from storage.plan import plan_timezone


class AwayProblem(ProblemCode):
    """What can be wrong with `/pulse away` and `/pulse back`."""

    NOT_A_DATE = "away.not_a_date"  # text
    START_AFTER_END = "away.start_after_end"  # start, end
    END_IN_PAST = "away.end_in_past"  # end
    NOT_IN_PLAN = "away.not_in_plan"


@dataclass(frozen=True)
class AwayDates:
    start: date | None
    end: date | None


def parse_day(text: str) -> date:
    """An ISO date (YYYY-MM-DD) that exists on the calendar."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(problem(AwayProblem.NOT_A_DATE, text=text)) from None


def set_away(
    session: Session, *, person: str, start_text: str, end_text: str, now: datetime
) -> AwayDates:
    """Mark `person` (a Slack user ID) away from one day to another, both included."""
    row = _person(session, person)
    start, end = parse_day(start_text), parse_day(end_text)
    if start > end:
        raise UserError(problem(AwayProblem.START_AFTER_END, start=start, end=end))
    today = _today(session, row, now)
    if end < today:
        raise UserError(problem(AwayProblem.END_IN_PAST, end=end))
    return _change(session, row, AwayDates(start, end), actor=person, now=now)


def clear_away(session: Session, *, person: str, now: datetime) -> AwayDates:
    """End `person`'s time away; returns the dates that were set (both None if there were none)."""
    row = _person(session, person)
    previous = AwayDates(row.away_from, row.away_until)
    _change(session, row, _ended(previous, _today(session, row, now)), actor=person, now=now)
    return previous


def _ended(away: AwayDates, today: date) -> AwayDates:
    """Away dates cut short today: the days already spent away stay on record.

    Keeping them is what stops a prompt for a period that began while the owner was away: back
    on a Wednesday, they are next asked at the following fire, not at once for a week half gone.
    """
    if away.start is None or away.start >= today:
        return AwayDates(None, None)  # not gone yet: nothing to keep
    if away.end is not None and away.end < today:
        return away  # already over
    return AwayDates(away.start, today - timedelta(days=1))


def _today(session: Session, row: Person, now: datetime) -> date:
    return local_date(now, person_zone(row.tz, plan_timezone(session=session)))


def _person(session: Session, slack_id: str) -> Person:
    row = queries.person_by_slack_id(session=session, slack_id=slack_id)
    if row is None:
        raise NotFound(problem(AwayProblem.NOT_IN_PLAN))
    return row


def _change(
    session: Session, row: Person, dates: AwayDates, *, actor: str, now: datetime
) -> AwayDates:
    before = _as_dict(AwayDates(row.away_from, row.away_until))
    after = _as_dict(dates)
    if before == after:
        return dates
    assert row.id is not None
    queries.set_away_dates(session=session, person_id=row.id, start=dates.start, end=dates.end)
    audit.record(
        session,
        actor=f"slack:{actor}",
        action="update",
        entity="person",
        entity_key=actor,
        before=before,
        after=after,
        now=now,
    )
    return dates


def _as_dict(dates: AwayDates) -> dict[str, str | None]:
    return {
        "away_from": dates.start.isoformat() if dates.start else None,
        "away_until": dates.end.isoformat() if dates.end else None,
    }
