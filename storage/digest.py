"""The weekly digest's reads (what happened in a window of time) and its delivery claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, func, update
from sqlmodel import Session, col, select

from storage.db import insert_or_skip
from storage.models import (
    Decision,
    DecisionPoll,
    Dependency,
    DependencyState,
    DigestDelivery,
    Initiative,
    InitiativeStatus,
    Milestone,
    MilestoneStatus,
    Objective,
    Person,
    PollState,
    PulseAnswer,
    PulseRequest,
    Team,
)

# --- what happened in a window ----------------------------------------------------------------


@dataclass(frozen=True)
class PulseCount:
    sent: int
    answered: int


def pulse_counts(*, session: Session, start: datetime, end: datetime) -> PulseCount:
    """Pulses that fell due in [start, end) and reached their owner, and how many were answered."""
    sent = and_(
        col(PulseRequest.due_at) >= start,
        col(PulseRequest.due_at) < end,
        col(PulseRequest.sent_at).is_not(None),
    )
    total, answered = session.exec(
        select(
            func.count(),
            func.count(col(PulseRequest.answered_at)),
        ).where(sent)
    ).one()
    return PulseCount(sent=int(total or 0), answered=int(answered or 0))


def acknowledgement_waits(*, session: Session, start: datetime, end: datetime) -> list[timedelta]:
    """For dependencies acknowledged in [start, end): how long after the request each was."""
    rows = session.exec(
        select(col(Dependency.requested_at), col(Dependency.acknowledged_at)).where(
            col(Dependency.acknowledged_at) >= start,
            col(Dependency.acknowledged_at) < end,
            col(Dependency.requested_at).is_not(None),
        )
    ).all()
    return [acked - asked for asked, acked in rows if asked is not None and acked is not None]


@dataclass(frozen=True)
class DecidedSlip:
    """A decision recorded in the window, with what its slip and its poll say about timing."""

    decision: Decision
    milestone: Milestone
    initiative: Initiative
    poll_window_end: datetime | None  # the poll's deadline before any extension


def decisions_between(*, session: Session, start: datetime, end: datetime) -> list[DecidedSlip]:
    """Decisions recorded in [start, end), oldest first, with their milestone and poll window."""
    rows = session.exec(
        select(Decision, Milestone, Initiative, DecisionPoll)
        .join(Milestone, col(Milestone.id) == col(Decision.milestone_id))
        .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
        .outerjoin(DecisionPoll, col(DecisionPoll.id) == col(Decision.poll_id))
        .where(col(Decision.decided_at) >= start, col(Decision.decided_at) < end)
        .order_by(col(Decision.decided_at), col(Decision.id))
    ).all()
    return [
        DecidedSlip(
            decision=decision,
            milestone=milestone,
            initiative=initiative,
            poll_window_end=(poll.original_deadline or poll.deadline) if poll else None,
        )
        for decision, milestone, initiative, poll in rows
    ]


@dataclass(frozen=True)
class OpenPoll:
    poll: DecisionPoll
    milestone: Milestone
    initiative: Initiative


def open_polls(*, session: Session) -> list[OpenPoll]:
    """Decision polls still open, soonest deadline first."""
    rows = session.exec(
        select(DecisionPoll, Milestone, Initiative)
        .join(Milestone, col(Milestone.id) == col(DecisionPoll.milestone_id))
        .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
        .where(col(DecisionPoll.state) == PollState.OPEN)
        .order_by(col(DecisionPoll.deadline), col(DecisionPoll.id))
    ).all()
    return [OpenPoll(poll, milestone, initiative) for poll, milestone, initiative in rows]


@dataclass(frozen=True)
class WaitingDependency:
    dependency: Dependency
    initiative: Initiative
    provider: Team


def unacknowledged_dependencies(*, session: Session) -> list[WaitingDependency]:
    """Requests posted to their provider team and not acknowledged yet, oldest request first."""
    rows = session.exec(
        select(Dependency, Initiative, Team)
        .join(Initiative, col(Initiative.id) == col(Dependency.initiative_id))
        .join(Team, col(Team.id) == col(Dependency.provider_team_id))
        .where(
            col(Dependency.state) == DependencyState.REQUESTED,
            col(Dependency.requested_at).is_not(None),
            col(Dependency.archived).is_(False),
            col(Initiative.archived).is_(False),
        )
        .order_by(col(Dependency.requested_at), col(Dependency.id))
    ).all()
    return [WaitingDependency(d, i, t) for d, i, t in rows]


def dark_initiatives(*, session: Session) -> list[tuple[Initiative, Person]]:
    """Live initiatives whose owner went silent through reminder and escalation, longest first."""
    rows = session.exec(
        select(Initiative, Person)
        .join(Person, col(Person.id) == col(Initiative.owner_id))
        .where(
            col(Initiative.dark_since).is_not(None),
            col(Initiative.archived).is_(False),
            col(Initiative.status) == InitiativeStatus.ACTIVE,
        )
        .order_by(col(Initiative.dark_since), col(Initiative.key))
    ).all()
    return [(initiative, owner) for initiative, owner in rows]


def live_initiative_ids(*, session: Session) -> list[tuple[int, str, str]]:
    """(id, key, title) of every live, active initiative, in key order."""
    rows = session.exec(
        select(col(Initiative.id), col(Initiative.key), col(Initiative.title))
        .where(
            col(Initiative.archived).is_(False), col(Initiative.status) == InitiativeStatus.ACTIVE
        )
        .order_by(col(Initiative.key))
    ).all()
    return [(int(i or 0), str(k), str(t)) for i, k, t in rows]


@dataclass(frozen=True)
class ObjectiveDrift:
    key: str
    title: str
    days_delayed: int  # the sum of every delay decided for its milestones
    delays: int
    descoped: int


def drift_by_objective(*, session: Session) -> list[ObjectiveDrift]:
    """Per live objective: the delays decided since the plan was imported, milestones descoped."""
    objectives = session.exec(
        select(col(Objective.id), col(Objective.key), col(Objective.title))
        .where(col(Objective.archived).is_(False))
        .order_by(col(Objective.key))
    ).all()
    delayed = dict(
        (int(objective_id or 0), (int(days or 0), int(count or 0)))
        for objective_id, days, count in session.exec(
            select(
                col(Initiative.objective_id),
                func.sum(col(Decision.days_moved)),
                func.count(),
            )
            .select_from(Decision)
            .join(Milestone, col(Milestone.id) == col(Decision.milestone_id))
            .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
            .where(col(Decision.days_moved) > 0, col(Initiative.objective_id).is_not(None))
            .group_by(col(Initiative.objective_id))
        ).all()
    )
    descoped = dict(
        (int(objective_id or 0), int(count or 0))
        for objective_id, count in session.exec(
            select(col(Initiative.objective_id), func.count())
            .select_from(Milestone)
            .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
            .where(
                col(Milestone.status) == MilestoneStatus.DESCOPED,
                col(Milestone.archived).is_(False),
                col(Initiative.objective_id).is_not(None),
            )
            .group_by(col(Initiative.objective_id))
        ).all()
    )
    return [
        ObjectiveDrift(
            key=str(key),
            title=str(title),
            days_delayed=delayed.get(objective_id or 0, (0, 0))[0],
            delays=delayed.get(objective_id or 0, (0, 0))[1],
            descoped=descoped.get(objective_id or 0, 0),
        )
        for objective_id, key, title in objectives
    ]


@dataclass(frozen=True)
class CameDue:
    """A milestone whose date as first planned fell in the window, and what its owner said before."""

    milestone: Milestone
    confidence: int | None  # the latest stated confidence at or before the look-back day


def milestones_come_due(
    *, session: Session, first: date, last: date, look_back: timedelta
) -> list[CameDue]:
    """Live milestones first due in [first, last], each with the confidence its initiative's owner
    last stated by `look_back` before that day (None when they stated none by then)."""
    milestones = session.exec(
        select(Milestone)
        .where(
            col(Milestone.original_due) >= first,
            col(Milestone.original_due) <= last,
            col(Milestone.archived).is_(False),
        )
        .order_by(col(Milestone.original_due), col(Milestone.key))
    ).all()
    if not milestones:
        return []
    initiative_ids = sorted({m.initiative_id for m in milestones})
    answers = session.exec(
        select(
            col(PulseRequest.initiative_id), col(PulseAnswer.answered_at), PulseAnswer.confidence
        )
        .join(PulseRequest, col(PulseRequest.id) == col(PulseAnswer.pulse_request_id))
        .where(
            col(PulseRequest.initiative_id).in_(initiative_ids),
            col(PulseAnswer.confidence).is_not(None),
        )
        .order_by(col(PulseAnswer.answered_at))
    ).all()
    came: list[CameDue] = []
    for milestone in milestones:
        # The answers are few per initiative (one a week): a scan per milestone stays cheap.
        before = datetime.combine(milestone.original_due - look_back, time.max, tzinfo=UTC)
        stated = None
        for initiative_id, answered_at, confidence in answers:
            if initiative_id == milestone.initiative_id and answered_at <= before:
                stated = confidence
        came.append(CameDue(milestone=milestone, confidence=stated))
    return came


def first_activity(*, session: Session) -> datetime | None:
    """When the plan's first initiative became active: no digest covers a week before it."""
    return session.exec(select(func.min(col(Initiative.active_since)))).one()


# --- delivery claims ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryClaim:
    delivery: DigestDelivery
    stale_since: datetime | None  # set when taken over: the dead claim's time, to search from


def claim_delivery(
    *, session: Session, period: str, recipient: str, now: datetime, lease: timedelta
) -> DeliveryClaim | None:
    """This process's claim on one digest: a new row, or one whose claim went stale unfinished.

    None when the digest is done, or another process holds a live claim on it.
    """
    inserted = (
        session.connection()
        .execute(
            insert_or_skip(session, DigestDelivery)
            .values(period=period, recipient=recipient, claimed_at=now, thread_posted=0)
            .on_conflict_do_nothing(index_elements=["period", "recipient"])
            .returning(col(DigestDelivery.id))
        )
        .first()
    )
    if inserted is not None:
        created = session.get(DigestDelivery, int(inserted[0]))
        return DeliveryClaim(created, None) if created is not None else None
    before = session.exec(
        select(col(DigestDelivery.claimed_at)).where(
            col(DigestDelivery.period) == period, col(DigestDelivery.recipient) == recipient
        )
    ).first()
    # Taken over only by the one process whose conditional update matches the stale claim.
    taken = (
        session.connection()
        .execute(
            update(DigestDelivery)
            .where(
                col(DigestDelivery.period) == period,
                col(DigestDelivery.recipient) == recipient,
                col(DigestDelivery.finished_at).is_(None),
                col(DigestDelivery.claimed_at) <= now - lease,
            )
            .values(claimed_at=now)
            .returning(col(DigestDelivery.id))
        )
        .first()
    )
    if taken is None:
        return None
    delivery = session.get(DigestDelivery, int(taken[0] or 0))
    if delivery is None:
        return None
    session.refresh(delivery)
    return DeliveryClaim(delivery, before or now)


def record_parent(
    *, session: Session, delivery_id: int, channel_id: str, ts: str, now: datetime
) -> None:
    session.connection().execute(
        update(DigestDelivery)
        .where(col(DigestDelivery.id) == delivery_id)
        .values(channel_id=channel_id, message_ts=ts, posted_at=now, error=None)
    )


def record_thread_progress(*, session: Session, delivery_id: int, posted: int) -> None:
    session.connection().execute(
        update(DigestDelivery)
        .where(col(DigestDelivery.id) == delivery_id)
        .values(thread_posted=posted)
    )


def finish_delivery(*, session: Session, delivery_id: int, now: datetime) -> None:
    session.connection().execute(
        update(DigestDelivery)
        .where(col(DigestDelivery.id) == delivery_id)
        .values(finished_at=now, error=None)
    )


def record_failure(*, session: Session, delivery_id: int, error: str) -> None:
    """Kept claimed: the next tick past the lease tries again (a refused channel, Slack down)."""
    session.connection().execute(
        update(DigestDelivery).where(col(DigestDelivery.id) == delivery_id).values(error=error)
    )
