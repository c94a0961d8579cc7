"""Queries of the people directory: plan people, their Slack profile, team channels, directory alerts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from storage.models import Alert, AlertState, Initiative, InitiativeStatus, Person, Team


def all_people(*, session: Session) -> list[Person]:
    return list(session.exec(select(Person).order_by(col(Person.id))))


def person_by_slack_id(*, session: Session, slack_id: str) -> Person | None:
    return session.exec(select(Person).where(col(Person.slack_id) == slack_id)).first()


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


def active_initiatives_by_owner(
    *, session: Session, owner_ids: Iterable[int]
) -> dict[int, list[Initiative]]:
    """The active, unarchived initiatives each of these people owns (people owning none are absent)."""
    ids = list(owner_ids)
    if not ids:
        return {}
    statement = (
        select(Initiative)
        .where(
            col(Initiative.owner_id).in_(ids),
            col(Initiative.archived).is_(False),
            col(Initiative.status) == InitiativeStatus.ACTIVE,
        )
        .order_by(col(Initiative.key))
    )
    owned: dict[int, list[Initiative]] = {}
    for initiative in session.exec(statement):
        owned.setdefault(initiative.owner_id, []).append(initiative)
    return owned


def teams_with_channels(*, session: Session) -> list[Team]:
    statement = (
        select(Team)
        .where(col(Team.archived).is_(False), col(Team.channel).is_not(None))
        .order_by(col(Team.key))
    )
    return list(session.exec(statement))


def set_team_channel_id(*, session: Session, team: Team, channel_id: str | None) -> None:
    if team.channel_id != channel_id:
        team.channel_id = channel_id
        session.add(team)


def leaders(*, session: Session) -> list[Person]:
    statement = (
        select(Person)
        .where(
            col(Person.is_leader).is_(True),
            col(Person.active).is_(True),
            col(Person.slack_id).is_not(None),
        )
        .order_by(col(Person.id))
    )
    return list(session.exec(statement))


def resolve_cleared_alerts(
    *, session: Session, kind: str, still_open: Iterable[str], now: datetime
) -> list[str]:
    """Resolve the open alerts of `kind` whose subject is no longer a problem; their subjects."""
    keep = set(still_open)
    statement = select(Alert).where(col(Alert.kind) == kind, col(Alert.state) == AlertState.OPEN)
    cleared = []
    for alert in session.exec(statement):
        if alert.subject in keep:
            continue
        alert.state = AlertState.RESOLVED
        alert.open_key = None
        alert.resolved_at = now
        alert.updated_at = now
        session.add(alert)
        cleared.append(alert.subject)
    return cleared
