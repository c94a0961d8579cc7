"""People: plan people, their Slack profile, their roles (leader, admin) and their time away."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from storage.models import Person


def all_people(*, session: Session) -> list[Person]:
    return list(session.exec(select(Person).order_by(col(Person.id))))


def person_by_id(*, session: Session, person_id: int) -> Person | None:
    return session.get(Person, person_id)


def person_by_slack_id(*, session: Session, slack_id: str) -> Person | None:
    return session.exec(select(Person).where(col(Person.slack_id) == slack_id)).first()


def people_by_ids(*, session: Session, person_ids: Iterable[int | None]) -> dict[int, Person]:
    ids = sorted({pid for pid in person_ids if pid is not None})
    if not ids:
        return {}
    return {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids))) if p.id}


def never_looked_up(*, session: Session, limit: int) -> list[Person]:
    """People known only by e-mail whom Slack was never asked about (new since the last sync)."""
    statement = (
        select(Person)
        .where(
            col(Person.slack_id).is_(None),
            col(Person.email).is_not(None),
            col(Person.synced_at).is_(None),
        )
        .order_by(col(Person.id))
        .limit(limit)
    )
    return list(session.exec(statement))


def mark_looked_up(*, session: Session, person: Person, now: datetime) -> None:
    """Slack has no such e-mail: remember it was asked, so only the daily sync asks again."""
    person.synced_at = now
    session.add(person)


def apply_slack_profile(
    *,
    session: Session,
    person: Person,
    slack_id: str,
    name: str,
    tz: str | None,
    active: bool,
    email: str | None,
    now: datetime,
) -> None:
    """Store what Slack says about a person (the plan's own fields stay as imported)."""
    if person.slack_id != slack_id:
        person.slack_linked_at = now
    person.slack_id = slack_id
    if name:
        person.name = name
    person.tz = tz
    person.active = active
    if person.email is None and email:
        person.email = email.lower()
    person.synced_at = now
    session.add(person)


def set_away_dates(
    *, session: Session, person_id: int, start: date | None, end: date | None
) -> None:
    """Out of office from `start` to `end`, both included (None, None: not away)."""
    person = session.get(Person, person_id)
    if person is None:
        raise LookupError(f"no person {person_id}")
    person.away_from, person.away_until = start, end
    session.add(person)
    session.flush()


def leaders(*, session: Session) -> list[Person]:
    """The plan's leaders who can be reached in Slack."""
    return _reachable_with(session, col(Person.is_leader).is_(True))


def admins(*, session: Session) -> list[Person]:
    """The plan's admins who can be reached in Slack."""
    return _reachable_with(session, col(Person.is_admin).is_(True))


def _reachable_with(session: Session, role: ColumnElement[bool]) -> list[Person]:
    statement = (
        select(Person)
        .where(role, col(Person.active).is_(True), col(Person.slack_id).is_not(None))
        .order_by(col(Person.id))
    )
    return list(session.exec(statement))
