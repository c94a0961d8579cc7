"""Factories that build plan rows for tests: every argument has a sensible default but the links."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TypeVar

from sqlmodel import Session

from storage.models import (
    Dependency,
    Initiative,
    InitiativeKpi,
    Kpi,
    KpiReading,
    Milestone,
    Objective,
    Person,
    PlanSettings,
    Team,
    TeamMember,
)

_serial = itertools.count(1)
T = TypeVar("T")


def _next() -> int:
    return next(_serial)


# Rows made by factories have existed long before any moment a test looks at.
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _saved(session: Session, row: T) -> T:
    session.add(row)
    session.flush()
    session.refresh(row)
    return row


def plan_settings(session: Session, **fields: object) -> PlanSettings:
    existing = session.get(PlanSettings, 1)
    row = existing or PlanSettings(
        id=1, organization="Northwind Financial", timezone="America/New_York"
    )
    for name, value in fields.items():
        setattr(row, name, value)
    return _saved(session, row)


def person(
    session: Session,
    *,
    slack_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    tz: str | None = "America/New_York",
    **fields: object,
) -> Person:
    n = _next()
    return _saved(
        session,
        Person(
            slack_id=slack_id or f"U{n:08d}",
            email=email or f"person{n}@northwind.example",
            name=name or f"Person {n}",
            tz=tz,
            **fields,
        ),
    )


def team(
    session: Session,
    *,
    key: str | None = None,
    name: str | None = None,
    channel_id: str | None = None,
    lead: Person | None = None,
    members: Iterable[Person] = (),
    **fields: object,
) -> Team:
    n = _next()
    row = _saved(
        session,
        Team(
            key=key or f"team-{n}",
            name=name or f"Team {n}",
            channel=channel_id or f"C{n:08d}",
            channel_id=channel_id or f"C{n:08d}",
            lead_id=lead.id if lead else None,
            **fields,
        ),
    )
    for member in members:
        session.add(TeamMember(team_id=row.id, person_id=member.id))
    session.flush()
    return row


def objective(
    session: Session,
    *,
    key: str | None = None,
    title: str | None = None,
    owner: Person | None = None,
) -> Objective:
    n = _next()
    return _saved(
        session,
        Objective(
            key=key or f"objective-{n}",
            title=title or f"Objective {n}",
            owner_id=owner.id if owner else None,
        ),
    )


def kpi(
    session: Session,
    *,
    objective: Objective,
    key: str | None = None,
    name: str | None = None,
    baseline: float = 0,
    target: float = 100,
    start: date = date(2026, 10, 1),
    due: date = date(2027, 9, 30),
    **fields: object,
) -> Kpi:
    n = _next()
    return _saved(
        session,
        Kpi(
            key=key or f"kpi-{n}",
            objective_id=objective.id,
            name=name or f"KPI {n}",
            baseline=baseline,
            target=target,
            start=start,
            due=due,
            **fields,
        ),
    )


def reading(
    session: Session,
    *,
    kpi: Kpi,
    value: float,
    as_of: date,
    source: str = "import",
    by: Person | None = None,
) -> KpiReading:
    return _saved(
        session,
        KpiReading(
            kpi_id=kpi.id,
            value=value,
            as_of=as_of,
            source=source,
            recorded_by_id=by.id if by else None,
            recorded_at=datetime.combine(as_of, datetime.min.time(), tzinfo=UTC),
        ),
    )


def initiative(
    session: Session,
    *,
    owner: Person,
    team: Team,
    key: str | None = None,
    title: str | None = None,
    objective: Objective | None = None,
    kpis: Iterable[Kpi] = (),
    **fields: object,
) -> Initiative:
    n = _next()
    row = _saved(
        session,
        Initiative(
            key=key or f"initiative-{n}",
            title=title or f"Initiative {n}",
            objective_id=objective.id if objective else None,
            owner_id=owner.id,
            team_id=team.id,
            **{"active_since": LONG_AGO, **fields},
        ),
    )
    for linked in kpis:
        session.add(InitiativeKpi(initiative_id=row.id, kpi_id=linked.id))
    session.flush()
    return row


def milestone(
    session: Session,
    *,
    initiative: Initiative,
    due: date,
    key: str | None = None,
    title: str | None = None,
    **fields: object,
) -> Milestone:
    n = _next()
    return _saved(
        session,
        Milestone(
            key=key or f"milestone-{n}",
            initiative_id=initiative.id,
            title=title or f"Milestone {n}",
            due=due,
            original_due=fields.pop("original_due", due),  # type: ignore[arg-type]
            **fields,
        ),
    )


def dependency(
    session: Session,
    *,
    initiative: Initiative,
    provider: Team,
    needed_by: date,
    key: str | None = None,
    need: str | None = None,
    milestone: Milestone | None = None,
    requested_at: datetime | None = None,
    **fields: object,
) -> Dependency:
    n = _next()
    return _saved(
        session,
        Dependency(
            key=key or f"dependency-{n}",
            initiative_id=initiative.id,
            provider_team_id=provider.id,
            milestone_id=milestone.id if milestone else None,
            need=need or f"Need {n}",
            needed_by=needed_by,
            requested_at=requested_at or datetime(2026, 11, 2, 14, tzinfo=UTC),
            **fields,
        ),
    )
