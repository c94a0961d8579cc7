"""The plan: settings, teams, objectives, KPIs and readings, initiatives, milestones; bulk import writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, ScalarSelect, case, delete, false, insert, select, text, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, SQLModel, col
from sqlmodel import select as select_rows  # typed ORM rows; `select` above reads plain tables

from storage.models import (
    Dependency,
    Holiday,
    Initiative,
    InitiativeKpi,
    InitiativeStatus,
    Kpi,
    KpiReading,
    Milestone,
    MilestoneStatus,
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


# --- settings and holidays ---------------------------------------------------------------------


def plan_settings(*, session: Session) -> PlanSettings:
    """The plan's settings row, or the defaults when no plan was imported yet."""
    return session.get(PlanSettings, 1) or PlanSettings(id=1)


def plan_timezone(*, session: Session) -> str:
    """The plan's timezone name (resolve it with `bot.timezones`)."""
    return plan_settings(session=session).timezone


def holidays(*, session: Session) -> list[Holiday]:
    return list(session.exec(select_rows(Holiday)))


# --- teams ---------------------------------------------------------------------------------------


def teams_with_channels(*, session: Session) -> list[Team]:
    statement = (
        select_rows(Team)
        .where(col(Team.archived).is_(False), col(Team.channel).is_not(None))
        .order_by(col(Team.key))
    )
    return list(session.exec(statement))


def set_team_channel_id(*, session: Session, team: Team, channel_id: str | None) -> None:
    if team.channel_id != channel_id:
        team.channel_id = channel_id
        session.add(team)


# --- objectives and initiatives ------------------------------------------------------------------


def initiative_by_id(*, session: Session, initiative_id: int) -> Initiative | None:
    return session.get(Initiative, initiative_id)


def initiatives_by_ids(*, session: Session, initiative_ids: Iterable[int]) -> dict[int, Initiative]:
    ids = sorted(set(initiative_ids))
    if not ids:
        return {}
    statement = select_rows(Initiative).where(col(Initiative.id).in_(ids))
    return {row.id: row for row in session.exec(statement) if row.id is not None}


def objectives_by_ids(*, session: Session, objective_ids: Iterable[int]) -> dict[int, Objective]:
    ids = sorted(set(objective_ids))
    if not ids:
        return {}
    statement = select_rows(Objective).where(col(Objective.id).in_(ids))
    return {row.id: row for row in session.exec(statement) if row.id is not None}


def active_initiatives_by_owner(
    *, session: Session, owner_ids: Iterable[int]
) -> dict[int, list[Initiative]]:
    """The active, unarchived initiatives each of these people owns (people owning none are absent)."""
    ids = list(owner_ids)
    if not ids:
        return {}
    statement = (
        select_rows(Initiative)
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


def mark_dark(*, session: Session, initiative_ids: Iterable[int], now: datetime) -> None:
    """Flag initiatives whose owner stayed silent (kept from the first time, not moved)."""
    ids = sorted(set(initiative_ids))
    if ids:
        session.connection().execute(
            update(Initiative)
            .where(col(Initiative.id).in_(ids), col(Initiative.dark_since).is_(None))
            .values(dark_since=now)
        )


# --- KPIs and readings ---------------------------------------------------------------------------


def linked_kpis(*, session: Session, initiative_id: int) -> list[Kpi]:
    statement = (
        select_rows(Kpi)
        .join(InitiativeKpi, col(InitiativeKpi.kpi_id) == col(Kpi.id))
        .where(InitiativeKpi.initiative_id == initiative_id, col(Kpi.archived).is_(False))
        .order_by(col(Kpi.key))
    )
    return list(session.exec(statement))


def newest_reading_id() -> ScalarSelect[int | None]:
    """The id of the correlated `Kpi`'s newest reading (newest day, then newest row of that day):
    one seek on ix_kpi_reading_kpi_as_of per KPI, whatever the number of readings."""
    return (
        select(col(KpiReading.id))
        .where(col(KpiReading.kpi_id) == col(Kpi.id))
        .order_by(col(KpiReading.as_of).desc(), col(KpiReading.id).desc())
        .limit(1)
        .correlate(Kpi)
        .scalar_subquery()
    )


def latest_readings(*, session: Session, kpi_ids: Iterable[int]) -> dict[int, KpiReading]:
    """The newest reading of each KPI (by as_of, then by when it was recorded)."""
    ids = list(kpi_ids)
    if not ids:
        return {}
    statement = (
        select_rows(KpiReading)
        .where(col(KpiReading.kpi_id).in_(ids))
        .order_by(
            col(KpiReading.kpi_id),
            col(KpiReading.as_of).desc(),
            col(KpiReading.recorded_at).desc(),
            col(KpiReading.id).desc(),
        )
    )
    newest: dict[int, KpiReading] = {}
    for reading in session.exec(statement):
        newest.setdefault(reading.kpi_id, reading)
    return newest


def save_readings(*, session: Session, readings: Sequence[KpiReading]) -> None:
    """Append readings; a reading is never changed, a correction is a newer row for its day."""
    if readings:
        session.add_all(readings)
        session.flush()


# --- milestones ----------------------------------------------------------------------------------


def initiative_milestones(*, session: Session, initiative_id: int) -> list[Milestone]:
    """Every live milestone of an initiative, open ones and done ones, by due date."""
    statement = (
        select_rows(Milestone)
        .where(Milestone.initiative_id == initiative_id, col(Milestone.archived).is_(False))
        .order_by(col(Milestone.due), col(Milestone.key))
    )
    return list(session.exec(statement))


def open_milestones(*, session: Session, initiative_id: int) -> list[Milestone]:
    return [
        milestone
        for milestone in initiative_milestones(session=session, initiative_id=initiative_id)
        if milestone.status == MilestoneStatus.OPEN
    ]


def set_expected_due(*, session: Session, milestone_id: int, expected_due: date) -> None:
    """The owner's forecast for an open milestone; its planned `due` stays as the plan says."""
    milestone = _milestone(session, milestone_id)
    milestone.expected_due = expected_due
    session.add(milestone)


def mark_milestone_done(*, session: Session, milestone_id: int, at: datetime) -> None:
    milestone = _milestone(session, milestone_id)
    milestone.status = MilestoneStatus.DONE
    milestone.completed_at = at
    session.add(milestone)


@dataclass(frozen=True)
class MilestoneAndPeople:
    """A milestone with what deciding who may change it needs, read in one query."""

    milestone: Milestone
    initiative: Initiative
    owner_slack_id: str | None
    lead_slack_id: str | None  # the initiative's team lead, if it has one
    asker_is_admin: bool  # the person asking is a PlanPulse admin


def milestone_and_people(
    *, session: Session, milestone_id: int, asker_slack_id: str | None = None
) -> MilestoneAndPeople | None:
    """One primary-key lookup, joined: fast enough to run inside a trigger_id's 3 seconds.

    `asker_is_admin` is about `asker_slack_id`, False when none is given or nobody has it.
    """
    owner, lead, asker = aliased(Person), aliased(Person), aliased(Person)
    statement = (
        select(Milestone, Initiative, col(owner.slack_id), col(lead.slack_id), col(asker.is_admin))
        .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
        .join(Team, col(Team.id) == col(Initiative.team_id))
        .join(owner, col(owner.id) == col(Initiative.owner_id))
        .outerjoin(lead, col(lead.id) == col(Team.lead_id))
        # At most one row: slack_id is unique. No asker: a condition no row meets.
        .outerjoin(
            asker,
            col(asker.slack_id) == asker_slack_id if asker_slack_id else false(),
        )
        .where(col(Milestone.id) == milestone_id)
        # Fresh values even when the session already holds the row: a rule decides on them.
        .execution_options(populate_existing=True)
    )
    row = session.execute(statement).first()
    if row is None:
        return None
    milestone, initiative, owner_slack_id, lead_slack_id, asker_is_admin = row
    return MilestoneAndPeople(
        milestone=milestone,
        initiative=initiative,
        owner_slack_id=owner_slack_id,
        lead_slack_id=lead_slack_id,
        asker_is_admin=bool(asker_is_admin),
    )


def complete_open_milestone(*, session: Session, milestone_id: int, at: datetime) -> bool:
    """Open → done; False when it was not open any more (a second click, another replica)."""
    return _changed_if_open(
        session, milestone_id, {"status": MilestoneStatus.DONE, "completed_at": at}
    )


def move_open_milestone(
    *, session: Session, milestone_id: int, from_due: date, to_due: date
) -> bool:
    """A new `due` for an open milestone still due on `from_due`; `original_due` is never touched.

    The owner's forecast (`expected_due`) is cleared when the new date already covers it.
    False when the milestone was no longer open, or was moved by someone else meanwhile.
    """
    expected = col(Milestone.expected_due)
    return _changed_if_open(
        session,
        milestone_id,
        {"due": to_due, "expected_due": case((expected <= to_due, None), else_=expected)},
        col(Milestone.due) == from_due,
    )


def descope_open_milestone(*, session: Session, milestone_id: int, scope_note: str) -> bool:
    """Open → descoped, with what was cut; False when it was not open any more."""
    return _changed_if_open(
        session, milestone_id, {"status": MilestoneStatus.DESCOPED, "scope_note": scope_note}
    )


def _changed_if_open(
    session: Session, milestone_id: int, values: dict[str, Any], *conditions: Any
) -> bool:
    """One conditional UPDATE: the database, not an earlier read, decides whether it still applies."""
    statement = (
        update(Milestone)
        .where(
            col(Milestone.id) == milestone_id,
            col(Milestone.status) == MilestoneStatus.OPEN,
            col(Milestone.archived).is_(False),
            *conditions,
        )
        .values(**values)
        .returning(col(Milestone.id))
    )
    changed = session.connection().execute(statement).first() is not None
    cached = session.identity_map.get(session.identity_key(Milestone, milestone_id))
    if cached is not None:
        session.expire(cached)  # the UPDATE bypassed the ORM: read it again when next used
    return changed


def _milestone(session: Session, milestone_id: int) -> Milestone:
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise LookupError(f"no milestone {milestone_id}")
    return milestone
