"""Plan queries and bulk writes: one query per kind of row, never one per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, delete, insert, select, text, update
from sqlmodel import Session, SQLModel

from storage.models import (
    Dependency,
    Holiday,
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

MODELS: dict[str, type[SQLModel]] = {
    "person": Person,
    "team": Team,
    "objective": Objective,
    "kpi": Kpi,
    "initiative": Initiative,
    "milestone": Milestone,
    "dependency": Dependency,
    "kpi_reading": KpiReading,
    "holiday": Holiday,
}
_LINKS: dict[str, tuple[type[SQLModel], str, str]] = {
    "team_member": (TeamMember, "team_id", "person_id"),
    "initiative_kpi": (InitiativeKpi, "initiative_id", "kpi_id"),
}
# SQLite allows 32,766 bound parameters per statement; stay far below for IN lists.
_IN_CHUNK = 900

Rows = Sequence[RowMapping]


@dataclass(frozen=True)
class PlanRows:
    """Every plan row, archived ones included, ordered by id (the order items were created)."""

    settings: RowMapping | None
    holidays: Rows
    people: Rows
    teams: Rows
    team_members: Rows
    objectives: Rows
    kpis: Rows
    readings: Rows
    initiatives: Rows
    initiative_kpis: Rows
    milestones: Rows
    dependencies: Rows


def _all(session: Session, model: type[SQLModel], *order: str) -> Rows:
    table = model.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in order] if order else list(table.primary_key.columns)
    return session.execute(select(table).order_by(*columns)).mappings().all()


def lock_plan_for_import(*, session: Session) -> None:
    """Serialise imports: the second waits for the first to commit, then compares with its result.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write statement (even one that
    changes no row) takes the database's write lock now, before the plan is read; other writers
    wait on the busy timeout.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('planpulse:plan-import'))"))
    else:
        session.execute(text("UPDATE plan_settings SET id = id WHERE id = 1"))


def load_plan_rows(*, session: Session) -> PlanRows:
    settings = session.execute(select(PlanSettings.__table__)).mappings().first()  # type: ignore[attr-defined]
    return PlanRows(
        settings=settings,
        holidays=_all(session, Holiday, "start", "end"),
        people=_all(session, Person),
        teams=_all(session, Team),
        team_members=_all(session, TeamMember),
        objectives=_all(session, Objective),
        kpis=_all(session, Kpi),
        readings=_all(session, KpiReading, "as_of", "id"),
        initiatives=_all(session, Initiative),
        initiative_kpis=_all(session, InitiativeKpi),
        milestones=_all(session, Milestone),
        dependencies=_all(session, Dependency),
    )


def insert_rows(*, session: Session, kind: str, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany; every row must carry the same columns."""
    if rows:
        session.execute(insert(MODELS[kind].__table__), list(rows))  # type: ignore[attr-defined]


def update_rows(*, session: Session, kind: str, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key: each row is {"id": ..., column: new value, ...}."""
    if rows:
        session.execute(update(MODELS[kind]), list(rows))


def key_ids(*, session: Session, kind: str) -> dict[str, int]:
    table = MODELS[kind].__table__  # type: ignore[attr-defined]
    return {key: id_ for key, id_ in session.execute(select(table.c.key, table.c.id))}


def person_ids(*, session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """People by Slack ID and by e-mail."""
    by_slack: dict[str, int] = {}
    by_email: dict[str, int] = {}
    table = Person.__table__  # type: ignore[attr-defined]
    for id_, slack_id, email in session.execute(
        select(table.c.id, table.c.slack_id, table.c.email)
    ):
        if slack_id:
            by_slack[slack_id] = id_
        if email:
            by_email[email] = id_
    return by_slack, by_email


def replace_links(
    *, session: Session, link: str, owner_ids: Iterable[int], pairs: Sequence[tuple[int, int]]
) -> None:
    """Set the members of some teams (or the KPIs of some initiatives) to exactly `pairs`."""
    model, owner_column, other_column = _LINKS[link]
    table = model.__table__  # type: ignore[attr-defined]
    owners = list(owner_ids)
    for start in range(0, len(owners), _IN_CHUNK):
        chunk = owners[start : start + _IN_CHUNK]
        session.execute(delete(table).where(table.c[owner_column].in_(chunk)))
    if pairs:
        session.execute(
            insert(table), [{owner_column: owner, other_column: other} for owner, other in pairs]
        )


def save_plan_settings(*, session: Session, values: dict[str, Any]) -> None:
    settings = session.get(PlanSettings, 1) or PlanSettings(id=1)
    for name, value in values.items():
        setattr(settings, name, value)
    session.add(settings)
    session.flush()


def replace_holidays(*, session: Session, holidays: Sequence[dict[str, Any]]) -> None:
    """Holidays have no history worth keeping: the plan's list simply replaces the stored one."""
    session.execute(delete(Holiday.__table__))  # type: ignore[attr-defined]
    insert_rows(session=session, kind="holiday", rows=holidays)
