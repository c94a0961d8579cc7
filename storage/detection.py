"""The queries detection runs every tick: set-based, on indexed columns, returning only the rows in trouble.

Each query answers one condition for the whole plan at once and returns plain mappings of the
columns its alert shows, so a pass over a plan of 100,000 milestones reads the few overdue rows
(through the status/due, state/needed_by and state/ack_due_at indexes), not every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from storage.models import (
    ChannelStatus,
    Decision,
    Dependency,
    DependencyRequest,
    DependencyState,
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
    PulseAnswer,
    PulseRequest,
    PulseState,
    Team,
)
from storage.plan import newest_reading_id

Row = Mapping[str, Any]

_owner = aliased(Person, name="owner")
_lead = aliased(Person, name="lead")
_provider = aliased(Team, name="provider")
_provider_lead = aliased(Person, name="provider_lead")

# Dependencies that can still hold anything up.
_UNDELIVERED = (
    col(Dependency.state) != DependencyState.DELIVERED,
    col(Dependency.archived).is_(False),
)
# Blocked outright, said to be late by the requesting owner, or past the day it was needed by.
_LATE_STATES = (DependencyState.BLOCKED, DependencyState.AT_RISK)


def _rows(session: Session, statement: Select[Any]) -> list[Row]:
    # Core rows through the connection, read as mappings: no ORM step, no copy per row.
    # RowMapping is a Mapping keyed by the labels given here (typed by SQLAlchemy as Any).
    return cast("list[Row]", list(session.connection().execute(statement).mappings()))


def _initiative_columns() -> tuple[Any, ...]:
    """Who and where of the initiative a row belongs to: its owner, team channel and team lead."""
    return (
        col(Initiative.id).label("initiative_id"),
        col(Initiative.key).label("initiative_key"),
        col(Initiative.title).label("initiative_title"),
        col(_owner.slack_id).label("owner_slack_id"),
        col(_owner.name).label("owner_name"),
        col(Team.key).label("team_key"),
        col(Team.name).label("team_name"),
        col(Team.channel_id).label("team_channel_id"),
        col(_lead.slack_id).label("lead_slack_id"),
    )


def _with_initiative(statement: Select[Any], initiative_id: Any) -> Select[Any]:
    return (
        statement.join(Initiative, col(Initiative.id) == initiative_id)
        .join(_owner, col(_owner.id) == col(Initiative.owner_id))
        .join(Team, col(Team.id) == col(Initiative.team_id))
        .outerjoin(_lead, col(_lead.id) == col(Team.lead_id))
        .where(col(Initiative.archived).is_(False))
    )


def _milestone_columns() -> tuple[Any, ...]:
    return (
        col(Milestone.id).label("milestone_id"),
        col(Milestone.key).label("milestone_key"),
        col(Milestone.title).label("milestone_title"),
        col(Milestone.due).label("due"),
        col(Milestone.original_due).label("original_due"),
        col(Milestone.expected_due).label("expected_due"),
    )


def settled_milestones(*, session: Session, today: date) -> set[int]:
    """Milestones a decision settled through `today` or later (Decision.settled_until): leaders
    chose to keep their date, so neither missed nor at-risk is raised for them until then."""
    statement = select(col(Decision.milestone_id)).where(col(Decision.settled_until) >= today)
    return {int(m) for m in session.connection().execute(statement).scalars()}


def missed_milestones(*, session: Session, today: date) -> list[Row]:
    """Open milestones whose due date is before `today` (the plan's today)."""
    statement = select(*_milestone_columns(), *_initiative_columns()).where(
        col(Milestone.status) == MilestoneStatus.OPEN,
        col(Milestone.due) < today,
        col(Milestone.archived).is_(False),
    )
    statement = _with_initiative(statement, col(Milestone.initiative_id))
    return _rows(session, statement.order_by(col(Milestone.due), col(Milestone.id)))


def _dependency_columns() -> tuple[Any, ...]:
    return (
        col(Dependency.id).label("dependency_id"),
        col(Dependency.key).label("dependency_key"),
        col(Dependency.need).label("need"),
        col(Dependency.needed_by).label("needed_by"),
        col(Dependency.state).label("state"),
        col(Dependency.note).label("note"),
        col(Dependency.alternative_date).label("alternative_date"),
        col(Dependency.requested_at).label("requested_at"),
        col(Dependency.ack_due_at).label("ack_due_at"),
        col(Dependency.milestone_id).label("milestone_id"),
        col(_provider.key).label("provider_key"),
        col(_provider.name).label("provider_name"),
        col(_provider.channel_id).label("provider_channel_id"),
        col(_provider_lead.slack_id).label("provider_lead_slack_id"),
        col(Milestone.title).label("milestone_title"),
        col(Milestone.due).label("milestone_due"),
        col(DependencyRequest.channel_id).label("request_channel_id"),
        col(DependencyRequest.message_ts).label("request_ts"),
    )


def _dependencies(where: Sequence[Any]) -> Select[Any]:
    statement = (
        select(*_dependency_columns(), *_initiative_columns())
        .join(_provider, col(_provider.id) == col(Dependency.provider_team_id))
        .outerjoin(_provider_lead, col(_provider_lead.id) == col(_provider.lead_id))
        .outerjoin(Milestone, col(Milestone.id) == col(Dependency.milestone_id))
        .outerjoin(
            DependencyRequest,
            and_(
                col(DependencyRequest.dependency_id) == col(Dependency.id),
                col(DependencyRequest.revision) == col(Dependency.request_revision),
            ),
        )
        .where(*where)
    )
    return _with_initiative(statement, col(Dependency.initiative_id)).order_by(
        col(Dependency.needed_by), col(Dependency.id)
    )


def unacknowledged_dependencies(*, session: Session, now: datetime) -> list[Row]:
    """Requests still unacknowledged once their acknowledgement deadline has passed."""
    where = (
        col(Dependency.state) == DependencyState.REQUESTED,
        col(Dependency.ack_due_at) <= now,
        col(Dependency.archived).is_(False),
    )
    return _rows(session, _dependencies(where))


def blocked_dependencies(*, session: Session, today: date) -> list[Row]:
    """Undelivered dependencies marked blocked, or whose needed-by day is before `today`."""
    where = (
        col(Dependency.state) != DependencyState.DELIVERED,
        col(Dependency.archived).is_(False),
        or_(col(Dependency.state) == DependencyState.BLOCKED, col(Dependency.needed_by) < today),
    )
    return _rows(session, _dependencies(where))


def milestones_held_up(*, session: Session, today: date) -> list[Row]:
    """Open, not yet due milestones fed by a blocked, reported-late or overdue dependency: one row per such dependency.

    Two queries, each on the (state, needed_by) index, rather than one OR that scans every row.
    """
    columns = (
        *_milestone_columns(),
        *_initiative_columns(),
        col(Dependency.id).label("dependency_id"),
        col(Dependency.need).label("need"),
        col(Dependency.state).label("state"),
        col(Dependency.needed_by).label("needed_by"),
        col(_provider.name).label("provider_name"),
    )
    undelivered = [s for s in DependencyState if s != DependencyState.DELIVERED]
    late = [s for s in undelivered if s not in _LATE_STATES]
    rows: list[Row] = []
    for where in (
        col(Dependency.state).in_(_LATE_STATES),
        and_(col(Dependency.state).in_(late), col(Dependency.needed_by) < today),
    ):
        statement = (
            select(*columns)
            .select_from(Dependency)
            .join(Milestone, col(Milestone.id) == col(Dependency.milestone_id))
            .join(_provider, col(_provider.id) == col(Dependency.provider_team_id))
            .where(
                where,
                col(Dependency.archived).is_(False),
                col(Milestone.status) == MilestoneStatus.OPEN,
                col(Milestone.due) >= today,
                col(Milestone.archived).is_(False),
            )
        )
        rows.extend(_rows(session, _with_initiative(statement, col(Milestone.initiative_id))))
    return rows


def milestones_expected_late(*, session: Session, today: date) -> list[Row]:
    """Open milestones not yet due whose owner now expects them after their due date."""
    statement = select(*_milestone_columns(), *_initiative_columns()).where(
        col(Milestone.expected_due).is_not(None),  # the expected_due index: few rows have one
        col(Milestone.expected_due) > col(Milestone.due),
        col(Milestone.status) == MilestoneStatus.OPEN,
        col(Milestone.due) >= today,
        col(Milestone.archived).is_(False),
    )
    statement = _with_initiative(statement, col(Milestone.initiative_id))
    return _rows(session, statement)


def upcoming_milestones(
    *, session: Session, today: date, milestone_ids: Iterable[int]
) -> list[Row]:
    """The listed milestones that are open and not yet due."""
    ids = sorted(set(milestone_ids))
    if not ids:
        return []
    statement = select(*_milestone_columns(), *_initiative_columns()).where(
        col(Milestone.id).in_(ids),
        col(Milestone.status) == MilestoneStatus.OPEN,
        col(Milestone.due) >= today,
        col(Milestone.archived).is_(False),
    )
    statement = _with_initiative(statement, col(Milestone.initiative_id))
    return _rows(session, statement.order_by(col(Milestone.due), col(Milestone.id)))


def next_open_milestones(
    *, session: Session, today: date, initiative_ids: Iterable[int]
) -> dict[int, int]:
    """Each initiative's nearest open milestone not yet due (what a worried pulse is about)."""
    ids = sorted(set(initiative_ids))
    if not ids:
        return {}
    ranked = (
        select(
            col(Milestone.id).label("milestone_id"),
            col(Milestone.initiative_id).label("initiative_id"),
            func.row_number()
            .over(
                partition_by=col(Milestone.initiative_id),
                order_by=(col(Milestone.due), col(Milestone.id)),
            )
            .label("rank"),
        )
        .where(
            col(Milestone.initiative_id).in_(ids),
            col(Milestone.status) == MilestoneStatus.OPEN,
            col(Milestone.due) >= today,
            col(Milestone.archived).is_(False),
        )
        .subquery()
    )
    statement = select(ranked.c.initiative_id, ranked.c.milestone_id).where(ranked.c.rank == 1)
    return {int(i): int(m) for i, m in session.execute(statement)}


def latest_pulse_statuses(*, session: Session) -> dict[int, str]:
    """The status of each active initiative's newest answer (its newest answered period's last word)."""
    ranked = (
        select(
            col(PulseRequest.initiative_id).label("initiative_id"),
            col(PulseAnswer.status).label("status"),
            func.row_number()
            .over(
                partition_by=col(PulseRequest.initiative_id),
                order_by=(col(PulseRequest.due_at).desc(), col(PulseAnswer.id).desc()),
            )
            .label("rank"),
        )
        .join(PulseRequest, col(PulseRequest.id) == col(PulseAnswer.pulse_request_id))
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .where(
            col(Initiative.archived).is_(False),
            col(Initiative.status) == InitiativeStatus.ACTIVE,
        )
        .subquery()
    )
    statement = select(ranked.c.initiative_id, ranked.c.status).where(ranked.c.rank == 1)
    return {int(i): str(s) for i, s in session.execute(statement)}


def initiatives(*, session: Session, initiative_ids: Iterable[int]) -> dict[int, Row]:
    """The who and where of some initiatives, by ID."""
    ids = sorted(set(initiative_ids))
    if not ids:
        return {}
    statement = (
        select(*_initiative_columns())
        .select_from(Initiative)
        .join(_owner, col(_owner.id) == col(Initiative.owner_id))
        .join(Team, col(Team.id) == col(Initiative.team_id))
        .outerjoin(_lead, col(_lead.id) == col(Team.lead_id))
        .where(col(Initiative.id).in_(ids), col(Initiative.archived).is_(False))
    )
    return {int(row["initiative_id"]): row for row in _rows(session, statement)}


def kpis_with_latest_reading(*, session: Session) -> list[Row]:
    """Every live KPI with its newest reading, found by one index seek per KPI (kpi_id, as_of)."""
    newest = newest_reading_id()
    latest = (
        select(col(Kpi.id).label("kpi_id"), newest.label("reading_id"))
        .join(Objective, col(Objective.id) == col(Kpi.objective_id))
        .where(col(Kpi.archived).is_(False), col(Objective.archived).is_(False))
        .subquery()
    )
    columns: tuple[Any, ...] = (
        col(Kpi.id).label("kpi_id"),
        col(Kpi.key).label("kpi_key"),
        col(Kpi.name).label("kpi_name"),
        col(Kpi.unit).label("unit"),
        col(Kpi.baseline).label("baseline"),
        col(Kpi.target).label("target"),
        col(Kpi.direction).label("direction"),
        col(Kpi.start).label("start"),
        col(Kpi.due).label("kpi_due"),
        col(Kpi.amber_tolerance).label("amber_tolerance"),
        col(Kpi.red_tolerance).label("red_tolerance"),
        col(Kpi.reading_every_days).label("reading_every_days"),
        col(Objective.key).label("objective_key"),
        col(Objective.title).label("objective_title"),
        col(_owner.slack_id).label("objective_owner_slack_id"),
        col(KpiReading.value).label("value"),
        col(KpiReading.as_of).label("as_of"),
    )
    statement = (
        select(*columns)
        .select_from(latest)
        .join(Kpi, col(Kpi.id) == latest.c.kpi_id)
        .join(Objective, col(Objective.id) == col(Kpi.objective_id))
        .outerjoin(_owner, col(_owner.id) == col(Objective.owner_id))
        .outerjoin(KpiReading, col(KpiReading.id) == latest.c.reading_id)
        .order_by(col(Kpi.key))
    )
    return _rows(session, statement)


def initiatives_of_kpis(*, session: Session, kpi_ids: Iterable[int]) -> dict[int, list[int]]:
    """Initiative ID → the listed KPIs linked to it."""
    ids = sorted(set(kpi_ids))
    if not ids:
        return {}
    statement = select(col(InitiativeKpi.initiative_id), col(InitiativeKpi.kpi_id)).where(
        col(InitiativeKpi.kpi_id).in_(ids)
    )
    linked: dict[int, list[int]] = {}
    for initiative_id, kpi_id in session.execute(statement):
        linked.setdefault(int(initiative_id), []).append(int(kpi_id))
    return linked


def silent_initiatives(
    *, session: Session, now: datetime, periods: int = 2
) -> dict[int, list[datetime]]:
    """Active initiatives whose last `periods` closed pulse periods all went unanswered → their due instants."""
    ranked = (
        select(
            col(PulseRequest.initiative_id).label("initiative_id"),
            col(PulseRequest.state).label("state"),
            col(PulseRequest.due_at).label("due_at"),
            func.row_number()
            .over(
                partition_by=col(PulseRequest.initiative_id),
                order_by=col(PulseRequest.due_at).desc(),
            )
            .label("rank"),
        )
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .where(
            col(PulseRequest.next_due_at) <= now,
            col(Initiative.archived).is_(False),
            col(Initiative.status) == InitiativeStatus.ACTIVE,
        )
        .subquery()
    )
    statement = select(ranked.c.initiative_id, ranked.c.state, ranked.c.due_at).where(
        ranked.c.rank <= periods
    )
    closed: dict[int, list[tuple[str, datetime]]] = {}
    for initiative_id, state, due_at in session.execute(statement):
        closed.setdefault(int(initiative_id), []).append((str(state), due_at))
    return {
        initiative_id: sorted(due for _state, due in rows)
        for initiative_id, rows in closed.items()
        if len(rows) == periods and all(state == PulseState.SENT for state, _due in rows)
    }


def unreachable_owners(*, session: Session) -> list[Row]:
    """Owners of active initiatives Slack cannot reach: deactivated, not found, or their latest pulse failed."""
    latest_pulse = (
        select(col(PulseRequest.state), col(PulseRequest.error))
        .where(col(PulseRequest.owner_id) == col(Person.id))
        .order_by(col(PulseRequest.due_at).desc(), col(PulseRequest.id).desc())
        .limit(1)
        .correlate(Person)
    )
    latest_state = latest_pulse.with_only_columns(col(PulseRequest.state)).scalar_subquery()
    latest_error = latest_pulse.with_only_columns(col(PulseRequest.error)).scalar_subquery()
    owning = (
        select(col(Initiative.owner_id))
        .where(
            col(Initiative.archived).is_(False),
            col(Initiative.status) == InitiativeStatus.ACTIVE,
        )
        .distinct()
    )
    statement = (
        select(
            col(Person.id).label("person_id"),
            col(Person.name).label("name"),
            col(Person.email).label("email"),
            col(Person.slack_id).label("slack_id"),
            col(Person.active).label("active"),
            col(Person.synced_at).label("synced_at"),
            latest_state.label("pulse_state"),
            latest_error.label("pulse_error"),
        )
        .where(col(Person.id).in_(owning))
        .order_by(col(Person.id))
    )
    found: list[Row] = []
    for row in _rows(session, statement):
        if not row["active"]:
            found.append({**row, "reason": "deactivated"})
        elif row["slack_id"] is None and row["synced_at"] is not None:
            found.append({**row, "reason": "not_in_slack"})
        elif row["pulse_state"] == PulseState.FAILED:
            found.append({**row, "reason": "unreachable"})
    return found


def initiatives_owned_by(
    *, session: Session, person_ids: Iterable[int]
) -> dict[int, list[dict[str, str]]]:
    """Person ID → the key and title of each active initiative they own."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    statement = (
        select(col(Initiative.owner_id), col(Initiative.key), col(Initiative.title))
        .where(
            col(Initiative.owner_id).in_(ids),
            col(Initiative.archived).is_(False),
            col(Initiative.status) == InitiativeStatus.ACTIVE,
        )
        .order_by(col(Initiative.key))
    )
    owned: dict[int, list[dict[str, str]]] = {}
    for owner_id, key, title in session.execute(statement):
        owned.setdefault(int(owner_id), []).append({"key": str(key), "title": str(title)})
    return owned


def channel_problems(*, session: Session) -> list[ChannelStatus]:
    """Channels the plan names that the bot last found it cannot post to."""
    statement = select(ChannelStatus).where(col(ChannelStatus.problem).is_not(None))
    return list(session.scalars(statement.order_by(col(ChannelStatus.ref))))


def resolved_channel(*, session: Session, ref: str | None) -> str | None:
    """The channel ID a plan reference names, as the directory last resolved it (a `C…` is itself)."""
    if not ref:
        return None
    status = session.get(ChannelStatus, ref)
    if status is not None:  # None when the channel was not found or is archived
        return status.channel_id
    return None if ref.startswith("#") else ref


def channel_uses(*, session: Session, ref: str) -> list[str]:
    """What the plan uses a channel for: team keys, "decisions", "alerts"."""
    uses = [
        f"team {key}"
        for key in session.scalars(
            select(col(Team.key)).where(col(Team.channel) == ref, col(Team.archived).is_(False))
        )
    ]
    settings = session.get(PlanSettings, 1)
    if settings is not None and settings.decisions_channel == ref:
        uses.append("decision polls")
    if settings is not None and settings.alerts_channel == ref:
        uses.append("alerts")
    return uses


def subject_now(*, session: Session, subject: str) -> dict[str, Any]:
    """The present state of an alert's subject ("milestone:17", "dependency:4"…), as plain values."""
    kind, _, raw_id = subject.partition(":")
    if kind == "milestone" and raw_id.isdigit():
        milestone = session.get(Milestone, int(raw_id))
        if milestone is None:
            return {"gone": True}
        return {
            "status": milestone.status,
            "due": milestone.due.isoformat(),
            "archived": milestone.archived,
        }
    if kind == "dependency" and raw_id.isdigit():
        dependency = session.get(Dependency, int(raw_id))
        if dependency is None:
            return {"gone": True}
        acknowledged_by = (
            session.get(Person, dependency.acknowledged_by_id)
            if dependency.acknowledged_by_id
            else None
        )
        return {
            "state": dependency.state,
            "needed_by": dependency.needed_by.isoformat(),
            "archived": dependency.archived,
            "acknowledged_by": acknowledged_by.slack_id if acknowledged_by else None,
        }
    return {}
