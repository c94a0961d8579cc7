"""Reads for `planpulse demo`'s quarter: the whole (small) example plan, row by row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from storage.models import Decision, Dependency, Initiative, Kpi, Milestone, Person, Team


def everyone(*, session: Session) -> Sequence[Person]:
    return session.exec(select(Person).order_by(col(Person.id))).all()


def initiatives_with_owners(*, session: Session) -> Sequence[tuple[Initiative, Person]]:
    return session.exec(
        select(Initiative, Person)
        .join(Person, col(Person.id) == col(Initiative.owner_id))
        .order_by(col(Initiative.key))
    ).all()


def plan_keys(*, session: Session) -> dict[str, set[str]]:
    """Every key (and every person's e-mail) the plan has, by kind, for checking what a scenario names."""
    keyed: dict[str, Any] = {
        "initiatives": Initiative.key,
        "milestones": Milestone.key,
        "dependencies": Dependency.key,
        "kpis": Kpi.key,
    }
    keys = {kind: {str(k) for k in session.exec(select(col(c))).all()} for kind, c in keyed.items()}
    keys["people"] = {str(e) for e in session.exec(select(col(Person.email))).all() if e}
    return keys


def milestones_by_due(*, session: Session) -> Sequence[Milestone]:
    return session.exec(select(Milestone).order_by(col(Milestone.due), col(Milestone.key))).all()


def dependencies_by_need(*, session: Session) -> Sequence[Dependency]:
    return session.exec(select(Dependency).order_by(col(Dependency.needed_by))).all()


def decisions_in_order(*, session: Session) -> Sequence[Decision]:
    return session.exec(select(Decision).order_by(col(Decision.decided_at))).all()


def live_kpis(*, session: Session) -> Sequence[Kpi]:
    return session.exec(
        select(Kpi).where(col(Kpi.archived).is_(False)).order_by(col(Kpi.key))
    ).all()


def names(*, session: Session) -> tuple[dict[int, str], dict[int, str]]:
    """Initiative and team titles by ID."""
    initiatives = {int(i.id or 0): i.title for i in session.exec(select(Initiative)).all()}
    teams = {int(t.id or 0): t.name for t in session.exec(select(Team)).all()}
    return initiatives, teams
