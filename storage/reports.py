"""Read-only queries behind /kpi, /plan and App Home; batched so no answer costs a query per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, func, literal, not_, or_
from sqlalchemy import select as select_columns  # SQLModel's select takes at most 4 columns
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.models import (
    Alert,
    AlertState,
    Decision,
    DecisionPoll,
    Dependency,
    DependencyState,
    Initiative,
    InitiativeKpi,
    Kpi,
    KpiReading,
    Milestone,
    MilestoneStatus,
    Objective,
    Person,
    PollState,
    PulseAnswer,
    PulseRequest,
    Team,
    TeamMember,
    Vote,
)
from storage.page import Page
from storage.plan import newest_reading_id

OPEN_DEPENDENCY_STATES = (
    DependencyState.REQUESTED,
    DependencyState.ACKNOWLEDGED,
    DependencyState.AT_RISK,
    DependencyState.BLOCKED,
)


@dataclass(frozen=True)
class Reading:
    value: float
    as_of: date


@dataclass(frozen=True)
class LastPulse:
    """The newest answer to any pulse of one initiative."""

    status: str
    confidence: int | None
    blockers: str | None
    answered_at: datetime | None


@dataclass
class ScorecardKpi:
    """A live KPI as the scorecard weighs it: the fields the rules read, its objective, its newest
    reading (plain columns, not ORM objects: a scorecard reads every KPI of the plan)."""

    id: int
    key: str
    name: str
    unit: str
    direction: str
    baseline: float
    target: float
    start: date
    due: date
    amber_tolerance: float
    red_tolerance: float
    objective_key: str
    objective_title: str
    latest: Reading | None


@dataclass
class ScorecardRow:
    objective: Objective
    kpi: Kpi
    readings: list[Reading]  # oldest first, at most the requested history


@dataclass
class DependencyRow:
    dependency: Dependency
    initiative: Initiative
    provider: Team
    milestone: Milestone | None = None


@dataclass
class HealthInputs:
    """What initiative health is computed from, fetched for many initiatives at once."""

    last_pulse: LastPulse | None = None
    kpis: list[tuple[Kpi, list[Reading]]] = field(default_factory=list)  # readings oldest first
    earliest_open_milestone: Milestone | None = None


@dataclass
class InitiativeCardData:
    initiative: Initiative
    owner: Person | None
    team: Team | None
    team_lead: Person | None
    objective: Objective | None
    milestones: list[Milestone]
    dependencies: list[DependencyRow]
    health: HealthInputs


@dataclass
class KpiCardData:
    kpi: Kpi
    objective: Objective | None
    readings: list[Reading]  # oldest first
    initiatives: list[tuple[Initiative, Person, LastPulse | None]]  # with owner and last pulse


@dataclass
class PollRow:
    poll: DecisionPoll
    milestone: Milestone
    initiative: Initiative
    voted: bool
    option: str | None = None  # this person's current vote; None in an anonymous poll


@dataclass
class DecisionRow:
    decision: Decision
    milestone: Milestone
    initiative: Initiative
    poll_channel: str | None = None  # the poll's parent message, whose thread holds the discussion
    poll_ts: str | None = None


# --- KPIs -------------------------------------------------------------------------------------


def recent_readings(
    *, session: Session, kpi_ids: Sequence[int] | None, per_kpi: int
) -> dict[int, list[Reading]]:
    """The newest `per_kpi` readings of each KPI (all KPIs when `kpi_ids` is None), oldest first.

    A correction is a newer row for the same day, so only the newest reading of each day counts.
    One query: the newest row of each (kpi_id, as_of) and its rank come from the
    ix_kpi_reading_kpi_as_of index alone (it carries the row id), and only the rows kept are
    then read from the table.
    """
    if kpi_ids is not None and not kpi_ids:
        return {}
    per_day = select(
        col(KpiReading.kpi_id), col(KpiReading.as_of), func.max(KpiReading.id).label("id")
    ).group_by(col(KpiReading.kpi_id), col(KpiReading.as_of))
    if kpi_ids is not None:
        per_day = per_day.where(col(KpiReading.kpi_id).in_(kpi_ids))
    days = per_day.subquery()
    rank = (
        func.row_number()
        .over(partition_by=days.c.kpi_id, order_by=days.c.as_of.desc())
        .label("rank")
    )
    ranked = select(days.c.id, rank).subquery()
    rows = session.exec(
        select(col(KpiReading.kpi_id), col(KpiReading.value), col(KpiReading.as_of))
        .join(ranked, ranked.c.id == col(KpiReading.id))
        .where(ranked.c.rank <= per_kpi)
        .order_by(col(KpiReading.kpi_id), ranked.c.rank.desc())
    ).all()
    readings: dict[int, list[Reading]] = defaultdict(list)
    for kpi_id, value, as_of in rows:
        readings[kpi_id].append(Reading(value=value, as_of=as_of))
    return dict(readings)


def scorecard_kpis(*, session: Session) -> list[ScorecardKpi]:
    """Every live KPI with its objective and newest reading, in objective then key order.

    One query. The newest reading is one index seek per KPI (the newest day, then the newest row
    of that day, from ix_kpi_reading_kpi_as_of), so the cost grows with the KPIs, not with the
    readings: grouping every reading by KPI and day cost 0.1-0.3 s at 100,000 readings.
    """
    fields: tuple[Any, ...] = (
        col(Kpi.id).label("id"),
        col(Kpi.key).label("key"),
        col(Kpi.name).label("name"),
        col(Kpi.unit).label("unit"),
        col(Kpi.direction).label("direction"),
        col(Kpi.baseline).label("baseline"),
        col(Kpi.target).label("target"),
        col(Kpi.start).label("start"),
        col(Kpi.due).label("due"),
        col(Kpi.amber_tolerance).label("amber_tolerance"),
        col(Kpi.red_tolerance).label("red_tolerance"),
        col(Objective.key).label("objective_key"),
        col(Objective.title).label("objective_title"),
    )
    rows = session.execute(
        select_columns(*fields, col(KpiReading.value), col(KpiReading.as_of))
        .join(Objective, col(Objective.id) == col(Kpi.objective_id))
        .outerjoin(KpiReading, col(KpiReading.id) == newest_reading_id())
        .where(col(Kpi.archived).is_(False))
        .order_by(col(Objective.key), col(Kpi.key))
    ).mappings()
    return [
        ScorecardKpi(
            **{field.name: row[field.name] for field in fields},
            latest=Reading(value=row["value"], as_of=row["as_of"])
            if row["as_of"] is not None
            else None,
        )
        for row in rows
    ]


def scorecard_rows(*, session: Session, history: int) -> list[ScorecardRow]:
    """Every live KPI with its objective and last `history` readings, in objective then key order."""
    pairs = session.exec(
        select(Kpi, Objective)
        .join(Objective, col(Objective.id) == col(Kpi.objective_id))
        .where(col(Kpi.archived).is_(False))
        .order_by(col(Objective.key), col(Kpi.key))
    ).all()
    readings = recent_readings(session=session, kpi_ids=None, per_kpi=history)
    return [
        ScorecardRow(objective=objective, kpi=kpi, readings=readings.get(kpi.id or 0, []))
        for kpi, objective in pairs
    ]


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def exact_kpi(*, session: Session, query: str) -> Kpi | None:
    """The live KPI whose key is `query` (exactly, else ignoring case), else the one whole name."""
    needle = query.strip().lower()
    for condition in (col(Kpi.key) == query.strip(), func.lower(Kpi.key) == needle):
        exact = session.exec(select(Kpi).where(condition, col(Kpi.archived).is_(False))).first()
        if exact is not None:
            return exact
    # A full name wins over names that merely contain it ("Uptime" vs "Uptime (mobile)").
    named = session.exec(
        select(Kpi).where(func.lower(Kpi.name) == needle, col(Kpi.archived).is_(False)).limit(2)
    ).all()
    return named[0] if len(named) == 1 else None


def find_kpis(*, session: Session, query: str, limit: int) -> Page[Kpi]:
    """The KPI whose key (or else whole name) is `query`, else those whose key or name contain it."""
    exact = exact_kpi(session=session, query=query)
    if exact is not None:
        return Page(rows=[exact], total=1)
    needle = query.strip().lower()
    pattern = _like_pattern(needle)
    matches = and_(
        col(Kpi.archived).is_(False),
        or_(
            func.lower(Kpi.key).like(pattern, escape="\\"),
            func.lower(Kpi.name).like(pattern, escape="\\"),
        ),
    )
    rows = session.exec(select(Kpi).where(matches).order_by(col(Kpi.key)).limit(limit)).all()
    total = (
        len(rows)
        if len(rows) < limit
        else session.exec(select(func.count()).select_from(Kpi).where(matches)).one()
    )
    return Page(rows=list(rows), total=total)


def kpi_names(*, session: Session) -> list[tuple[str, str]]:
    """(key, name) of every live KPI, for "did you mean"."""
    return [
        (key, name)
        for key, name in session.exec(
            select(Kpi.key, Kpi.name).where(col(Kpi.archived).is_(False))
        ).all()
    ]


def kpi_card(*, session: Session, kpi: Kpi, history: int) -> KpiCardData:
    """One KPI with its readings history and the initiatives that move it."""
    initiatives = session.exec(
        select(Initiative, Person)
        .join(InitiativeKpi, col(InitiativeKpi.initiative_id) == col(Initiative.id))
        .join(Person, col(Person.id) == col(Initiative.owner_id))
        .where(InitiativeKpi.kpi_id == kpi.id, col(Initiative.archived).is_(False))
        .order_by(col(Initiative.key))
    ).all()
    pulses = last_pulses(session=session, initiative_ids=[i.id for i, _ in initiatives if i.id])
    return KpiCardData(
        kpi=kpi,
        objective=session.get(Objective, kpi.objective_id),
        readings=recent_readings(session=session, kpi_ids=[kpi.id or 0], per_kpi=history).get(
            kpi.id or 0, []
        ),
        initiatives=[(i, owner, pulses.get(i.id or 0)) for i, owner in initiatives],
    )


# --- initiatives ------------------------------------------------------------------------------


def last_pulses(*, session: Session, initiative_ids: Sequence[int]) -> dict[int, LastPulse]:
    """The newest pulse answer of each initiative, in one query."""
    if not initiative_ids:
        return {}
    if len(initiative_ids) == 1:  # one card: the newest answer by index, no window over all
        newest = session.exec(
            select(PulseAnswer)
            .join(PulseRequest, col(PulseRequest.id) == col(PulseAnswer.pulse_request_id))
            .where(col(PulseRequest.initiative_id) == initiative_ids[0])
            .order_by(col(PulseAnswer.answered_at).desc(), col(PulseAnswer.id).desc())
            .limit(1)
        ).first()
        return {} if newest is None else {initiative_ids[0]: _last_pulse(newest)}
    rank = (
        func.row_number()
        .over(
            partition_by=col(PulseRequest.initiative_id),
            order_by=(col(PulseAnswer.answered_at).desc(), col(PulseAnswer.id).desc()),
        )
        .label("rank")
    )
    ranked = (
        select(col(PulseAnswer.id), rank)
        .join(PulseRequest, col(PulseRequest.id) == col(PulseAnswer.pulse_request_id))
        .where(col(PulseRequest.initiative_id).in_(initiative_ids))
        .subquery()
    )
    rows = session.exec(
        select(PulseRequest.initiative_id, PulseAnswer)
        .join(PulseRequest, col(PulseRequest.id) == col(PulseAnswer.pulse_request_id))
        .join(ranked, ranked.c.id == col(PulseAnswer.id))
        .where(ranked.c.rank == 1)
    ).all()
    return {initiative_id: _last_pulse(answer) for initiative_id, answer in rows}


def _last_pulse(answer: PulseAnswer) -> LastPulse:
    return LastPulse(
        status=answer.status,
        confidence=answer.confidence,
        blockers=answer.blockers,
        answered_at=answer.answered_at,
    )


def health_inputs(
    *,
    session: Session,
    initiative_ids: Sequence[int],
    history: int = 1,
    milestones: Sequence[Milestone] | None = None,
) -> dict[int, HealthInputs]:
    """Last pulse, linked KPIs with their last `history` readings, earliest open milestone.

    Four queries, or three when the caller already holds the initiatives' `milestones`.
    """
    inputs = {initiative_id: HealthInputs() for initiative_id in initiative_ids}
    if not inputs:
        return inputs
    for initiative_id, pulse in last_pulses(session=session, initiative_ids=initiative_ids).items():
        inputs[initiative_id].last_pulse = pulse
    links = session.exec(
        select(InitiativeKpi.initiative_id, Kpi)
        .join(Kpi, col(Kpi.id) == col(InitiativeKpi.kpi_id))
        .where(col(InitiativeKpi.initiative_id).in_(initiative_ids), col(Kpi.archived).is_(False))
        .order_by(col(Kpi.key))
    ).all()
    readings = recent_readings(
        session=session, kpi_ids=sorted({k.id or 0 for _, k in links}), per_kpi=history
    )
    for initiative_id, kpi in links:
        inputs[initiative_id].kpis.append((kpi, readings.get(kpi.id or 0, [])))
    # Filtered by initiative only, in SQL: with a status condition SQLite prefers the
    # (status, due) index and walks every open milestone of the plan instead.
    if milestones is None:
        milestones = session.exec(
            select(Milestone)
            .where(col(Milestone.initiative_id).in_(initiative_ids))
            .order_by(col(Milestone.due), col(Milestone.id))
        ).all()
    for milestone in sorted(milestones, key=lambda m: (m.due, m.id or 0)):
        health = inputs[milestone.initiative_id]
        if (
            health.earliest_open_milestone is None
            and milestone.status == MilestoneStatus.OPEN
            and not milestone.archived
        ):
            health.earliest_open_milestone = milestone
    return inputs


def initiative_by_key(*, session: Session, key: str) -> Initiative | None:
    """The live initiative with this key; the exact key uses the unique index, any case scans."""
    key = key.strip()
    for condition in (col(Initiative.key) == key, func.lower(Initiative.key) == key.lower()):
        found = session.exec(
            select(Initiative).where(condition, col(Initiative.archived).is_(False))
        ).first()
        if found is not None:
            return found
    return None


def initiative_keys(*, session: Session) -> list[str]:
    return list(
        session.exec(select(Initiative.key).where(col(Initiative.archived).is_(False))).all()
    )


def initiative_card(
    *, session: Session, initiative: Initiative, history: int = 1
) -> InitiativeCardData:
    """Everything the /plan card shows about one initiative (KPIs with `history` readings)."""
    assert initiative.id is not None
    # Owner, team, its lead and the objective in one round trip rather than four.
    lead = aliased(Person)
    owner, team, team_lead, objective = session.exec(
        select(Person, Team, lead, Objective)
        .select_from(Initiative)
        .outerjoin(Person, col(Person.id) == col(Initiative.owner_id))
        .outerjoin(Team, col(Team.id) == col(Initiative.team_id))
        .outerjoin(lead, lead.id == Team.lead_id)  # type: ignore[arg-type]
        .outerjoin(Objective, col(Objective.id) == col(Initiative.objective_id))
        .where(col(Initiative.id) == initiative.id)
    ).one()
    milestones = session.exec(
        select(Milestone)
        .where(Milestone.initiative_id == initiative.id, col(Milestone.archived).is_(False))
        .order_by(col(Milestone.due), col(Milestone.key))
    ).all()
    by_id = {m.id: m for m in milestones}
    dependencies = [
        DependencyRow(
            dependency=dep,
            initiative=initiative,
            provider=provider,
            milestone=by_id.get(dep.milestone_id),
        )
        for dep, provider in session.exec(
            select(Dependency, Team)
            .join(Team, col(Team.id) == col(Dependency.provider_team_id))
            .where(Dependency.initiative_id == initiative.id, col(Dependency.archived).is_(False))
            .order_by(col(Dependency.needed_by), col(Dependency.key))
        ).all()
    ]
    return InitiativeCardData(
        initiative=initiative,
        owner=owner,
        team=team,
        team_lead=team_lead,
        objective=objective,
        milestones=list(milestones),
        dependencies=dependencies,
        health=health_inputs(
            session=session,
            initiative_ids=[initiative.id],
            history=history,
            milestones=milestones,
        )[initiative.id],
    )


def initiatives_owned_by(*, session: Session, person_id: int, limit: int) -> Page[Initiative]:
    mine = and_(col(Initiative.owner_id) == person_id, col(Initiative.archived).is_(False))
    rows = session.exec(
        select(Initiative).where(mine).order_by(col(Initiative.key)).limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(Initiative).where(mine)).one()
    return Page(rows=list(rows), total=total)


# --- dependencies -----------------------------------------------------------------------------


def team_ids_of(*, session: Session, person_id: int) -> list[int]:
    """Teams the person leads or belongs to."""
    led = select(Team.id).where(Team.lead_id == person_id, col(Team.archived).is_(False))
    member = (
        select(TeamMember.team_id)
        .join(Team, col(Team.id) == col(TeamMember.team_id))
        .where(TeamMember.person_id == person_id, col(Team.archived).is_(False))
    )
    ids = {*session.exec(led).all(), *session.exec(member).all()}
    return sorted(i for i in ids if i is not None)


def teams_led_by(*, session: Session, person_id: int) -> list[int]:
    """Teams the person leads (their initiatives are the person's to answer for)."""
    led = select(Team.id).where(Team.lead_id == person_id, col(Team.archived).is_(False))
    return sorted(i for i in session.exec(led).all() if i is not None)


def _dependency_page(
    session: Session, condition: ColumnElement[bool], limit: int
) -> Page[DependencyRow]:
    where = and_(
        condition,
        col(Dependency.archived).is_(False),
        col(Dependency.state).in_(OPEN_DEPENDENCY_STATES),
        col(Initiative.archived).is_(False),
    )
    rows = session.exec(
        select(Dependency, Initiative, Team)
        .join(Initiative, col(Initiative.id) == col(Dependency.initiative_id))
        .join(Team, col(Team.id) == col(Dependency.provider_team_id))
        .where(where)
        .order_by(col(Dependency.needed_by), col(Dependency.key))
        .limit(limit)
    ).all()
    total = (
        len(rows)
        if len(rows) < limit
        else session.exec(
            select(func.count())
            .select_from(Dependency)
            .join(Initiative, col(Initiative.id) == col(Dependency.initiative_id))
            .where(where)
        ).one()
    )
    return Page(
        rows=[DependencyRow(dependency=d, initiative=i, provider=t) for d, i, t in rows],
        total=total,
    )


def open_dependencies_for_teams(
    *, session: Session, team_ids: Sequence[int], limit: int
) -> Page[DependencyRow]:
    """Open dependencies other initiatives need from these teams (what the teams must act on)."""
    if not team_ids:
        return Page(rows=[], total=0)
    return _dependency_page(session, col(Dependency.provider_team_id).in_(team_ids), limit)


def open_dependencies_requested_by(
    *, session: Session, owner_id: int, limit: int
) -> Page[DependencyRow]:
    """Open dependencies that the person's own initiatives are waiting for."""
    owned = select(Initiative.id).where(
        Initiative.owner_id == owner_id, col(Initiative.archived).is_(False)
    )
    return _dependency_page(session, col(Dependency.initiative_id).in_(owned), limit)


# --- pulses, polls, decisions -----------------------------------------------------------------


def open_polls(*, session: Session, voter_id: int, limit: int) -> Page[PollRow]:
    """Open decision polls, soonest deadline first, with this person's vote on each (if any)."""
    is_open = DecisionPoll.state == PollState.OPEN
    rows = session.exec(
        select(DecisionPoll, Milestone, Initiative)
        .join(Milestone, col(Milestone.id) == col(DecisionPoll.milestone_id))
        .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
        .where(is_open)
        .order_by(col(DecisionPoll.deadline))
        .limit(limit)
    ).all()
    poll_ids = [p.id for p, _, _ in rows]
    mine = dict(
        session.exec(
            select(Vote.poll_id, Vote.option).where(
                Vote.voter_id == voter_id, col(Vote.poll_id).in_(poll_ids)
            )
        ).all()
        if poll_ids
        else []
    )
    total = session.exec(select(func.count()).select_from(DecisionPoll).where(is_open)).one()
    return Page(
        rows=[
            PollRow(
                poll=p, milestone=m, initiative=i, voted=p.id in mine, option=mine.get(p.id or 0)
            )
            for p, m, i in rows
        ],
        total=total,
    )


def recent_decisions(*, session: Session, limit: int) -> Page[DecisionRow]:
    """The decision log, newest first."""
    rows = session.exec(
        select(Decision, Milestone, Initiative, DecisionPoll)
        .join(Milestone, col(Milestone.id) == col(Decision.milestone_id))
        .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
        .outerjoin(DecisionPoll, col(DecisionPoll.id) == col(Decision.poll_id))
        .order_by(col(Decision.decided_at).desc(), col(Decision.id).desc())
        .limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(Decision)).one()
    return Page(
        rows=[
            DecisionRow(
                decision=d,
                milestone=m,
                initiative=i,
                poll_channel=p.channel_id if p else None,
                poll_ts=p.message_ts if p else None,
            )
            for d, m, i, p in rows
        ],
        total=total,
    )


# --- alerts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertScope:
    """The part of the plan one person answers for, as the alert subjects it covers.

    Initiatives the person owns or that belong to `initiative_team_ids`, with their milestones
    and the dependencies they wait for; dependencies `provider_team_ids` must deliver; KPIs of
    objectives the person owns (and, with `linked_kpis`, those the initiatives move); and every
    alert of `own_kinds`, whatever its subject.
    """

    person_id: int
    initiative_team_ids: Sequence[int]
    provider_team_ids: Sequence[int]
    linked_kpis: bool = False
    own_kinds: Sequence[str] = ()


def _subject(prefix: str, id_column: object) -> ColumnElement[str]:
    """An alert subject ("milestone:17") built in SQL from a row id, as bot/alerts writes it."""
    return literal(prefix, String) + cast(id_column, String)


def _in_scope(scope: AlertScope) -> ColumnElement[bool]:
    initiatives = select(Initiative.id).where(
        or_(
            col(Initiative.owner_id) == scope.person_id,
            col(Initiative.team_id).in_(list(scope.initiative_team_ids)),
        )
    )
    subjects = [
        select(_subject("initiative:", Initiative.id)).where(col(Initiative.id).in_(initiatives)),
        select(_subject("milestone:", Milestone.id)).where(
            col(Milestone.initiative_id).in_(initiatives)
        ),
        select(_subject("dependency:", Dependency.id)).where(
            or_(
                col(Dependency.initiative_id).in_(initiatives),
                col(Dependency.provider_team_id).in_(list(scope.provider_team_ids)),
            )
        ),
        select(_subject("kpi:", Kpi.id))
        .join(Objective, col(Objective.id) == col(Kpi.objective_id))
        .where(col(Objective.owner_id) == scope.person_id),
    ]
    if scope.linked_kpis:
        subjects.append(
            select(_subject("kpi:", InitiativeKpi.kpi_id)).where(
                col(InitiativeKpi.initiative_id).in_(initiatives)
            )
        )
    conditions = [col(Alert.subject).in_(subquery) for subquery in subjects]
    if scope.own_kinds:
        conditions.append(col(Alert.kind).in_(list(scope.own_kinds)))
    return or_(*conditions)


def open_alert_page(
    *,
    session: Session,
    limit: int,
    scope: AlertScope | None = None,
    inside: bool = True,
    hidden_kinds: Sequence[str] = (),
) -> Page[Alert]:
    """Open alerts, newest first: those in `scope` (or, with `inside=False`, all the others).

    Without a scope, every open alert; `hidden_kinds` are left out either way.
    """
    where: list[ColumnElement[bool]] = [col(Alert.state) == AlertState.OPEN]
    if hidden_kinds:
        where.append(col(Alert.kind).not_in(list(hidden_kinds)))
    if scope is not None:
        where.append(_in_scope(scope) if inside else not_(_in_scope(scope)))
    rows = session.exec(
        select(Alert)
        .where(*where)
        .order_by(col(Alert.opened_at).desc(), col(Alert.id).desc())
        .limit(limit)
    ).all()
    total = (
        len(rows)
        if len(rows) < limit
        else session.exec(select(func.count()).select_from(Alert).where(*where)).one()
    )
    return Page(rows=list(rows), total=total)
