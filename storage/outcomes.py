"""Decisions in the database: the row written once per poll, its follow-up claims, and what it touches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, or_
from sqlmodel import Session, col, select, update

from storage.db import insert_or_skip
from storage.models import (
    Decision,
    DecisionAction,
    DecisionOption,
    DecisionPoll,
    Dependency,
    DependencyState,
    Initiative,
    KnockOn,
    Milestone,
    MilestoneStatus,
    Objective,
    Person,
    Team,
)


def insert_decision(*, session: Session, values: dict[str, Any]) -> int | None:
    """The decision of a poll, inserted once: None when that poll already has one (poll_id is unique)."""
    statement = (
        insert_or_skip(session, Decision)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["poll_id"])
        .returning(col(Decision.id))
    )
    row = session.connection().execute(statement).first()
    return int(row[0]) if row is not None else None


def decision_of_poll(*, session: Session, poll_id: int) -> Decision | None:
    return session.exec(select(Decision).where(col(Decision.poll_id) == poll_id)).first()


def decision_by_id(*, session: Session, decision_id: int) -> Decision | None:
    return session.get(Decision, decision_id, populate_existing=True)


def set_scope_note(*, session: Session, milestone_id: int, scope_note: str) -> bool:
    """What is cut, written on a milestone that stays open (a decision cut scope to hold its date)."""
    result = session.connection().execute(
        update(Milestone)
        .where(
            col(Milestone.id) == milestone_id,
            col(Milestone.status) == MilestoneStatus.OPEN,
            col(Milestone.archived).is_(False),
        )
        .values(scope_note=scope_note)
    )
    return bool(result.rowcount == 1)


def open_dependencies_feeding(*, session: Session, milestone_id: int) -> list[Dependency]:
    """Undelivered, live dependencies whose delivery this milestone waits on."""
    return list(
        session.exec(
            select(Dependency)
            .where(
                col(Dependency.milestone_id) == milestone_id,
                col(Dependency.archived).is_(False),
                col(Dependency.state) != DependencyState.DELIVERED,
            )
            .order_by(col(Dependency.id))
        ).all()
    )


def team_lead_id(*, session: Session, team_id: int) -> int | None:
    team = session.get(Team, team_id)
    return team.lead_id if team is not None else None


def later_open_milestones(
    *, session: Session, initiative_id: int, after: date, other_than: int
) -> list[Milestone]:
    """The initiative's open, live milestones due after `after`, in date order."""
    return list(
        session.exec(
            select(Milestone)
            .where(
                col(Milestone.initiative_id) == initiative_id,
                col(Milestone.id) != other_than,
                col(Milestone.status) == MilestoneStatus.OPEN,
                col(Milestone.archived).is_(False),
                col(Milestone.due) > after,
            )
            .order_by(col(Milestone.due), col(Milestone.id))
        ).all()
    )


def action_owner_id(*, session: Session, initiative: Initiative) -> int:
    """Who gets an "add resources" action: the objective's owner, else the initiative's owner."""
    if initiative.objective_id is not None:
        objective = session.get(Objective, initiative.objective_id)
        if objective is not None and objective.owner_id is not None:
            return objective.owner_id
    return initiative.owner_id


def insert_action(*, session: Session, values: dict[str, Any]) -> None:
    session.add(DecisionAction(**values))
    session.flush()


def insert_knock_ons(*, session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """One row per (decision, subject); a subject already asked about is skipped. How many were new."""
    added = 0
    for row in rows:
        statement = (
            insert_or_skip(session, KnockOn)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["decision_id", "subject"])
            .returning(col(KnockOn.id))
        )
        if session.connection().execute(statement).first() is not None:
            added += 1
    return added


@dataclass(frozen=True)
class KnockOnView:
    knock_on: KnockOn
    person: Person


def knock_ons(*, session: Session, decision_id: int) -> list[KnockOnView]:
    rows = session.exec(
        select(KnockOn, Person)
        .join(Person, col(Person.id) == col(KnockOn.person_id))
        .where(col(KnockOn.decision_id) == decision_id)
        .order_by(col(KnockOn.id))
    ).all()
    return [KnockOnView(k, p) for k, p in rows]


def knock_on_by_id(*, session: Session, knock_on_id: int) -> KnockOnView | None:
    row = session.exec(
        select(KnockOn, Person)
        .join(Person, col(Person.id) == col(KnockOn.person_id))
        .where(col(KnockOn.id) == knock_on_id)
    ).first()
    return KnockOnView(row[0], row[1]) if row is not None else None


# --- claims: each Slack message of the follow-through is sent by one process, once ---------------


def claim_knock_on(*, session: Session, knock_on_id: int, now: datetime, stale: datetime) -> bool:
    """This process asks this person: not asked yet, and nobody else is asking (or their lease ran out)."""
    result = session.connection().execute(
        update(KnockOn)
        .where(
            col(KnockOn.id) == knock_on_id,
            col(KnockOn.asked_at).is_(None),
            or_(col(KnockOn.claimed_at).is_(None), col(KnockOn.claimed_at) < stale),
        )
        .values(claimed_at=now)
    )
    return bool(result.rowcount == 1)


def mark_knock_on_asked(
    *, session: Session, knock_on_id: int, now: datetime, channel: str | None, ts: str | None
) -> None:
    session.connection().execute(
        update(KnockOn)
        .where(col(KnockOn.id) == knock_on_id)
        .values(asked_at=now, channel_id=channel, message_ts=ts)
    )


def release_knock_on(*, session: Session, knock_on_id: int) -> None:
    session.connection().execute(
        update(KnockOn)
        .where(col(KnockOn.id) == knock_on_id, col(KnockOn.asked_at).is_(None))
        .values(claimed_at=None)
    )


def answer_knock_on(
    *,
    session: Session,
    knock_on_id: int,
    answer: str,
    now: datetime,
    answer_date: date | None = None,
    note: str | None = None,
) -> bool:
    """The first answer counts; a double click or a second submission changes nothing."""
    result = session.connection().execute(
        update(KnockOn)
        .where(col(KnockOn.id) == knock_on_id, col(KnockOn.answer).is_(None))
        .values(answer=answer, answered_at=now, answer_date=answer_date, note=note)
    )
    return bool(result.rowcount == 1)


def claim_knock_on_line(
    *, session: Session, decision_id: int, now: datetime, stale: datetime
) -> bool:
    result = session.connection().execute(
        update(Decision)
        .where(
            col(Decision.id) == decision_id,
            col(Decision.knock_on_ts).is_(None),
            or_(
                col(Decision.knock_on_claimed_at).is_(None),
                col(Decision.knock_on_claimed_at) < stale,
            ),
        )
        .values(knock_on_claimed_at=now)
    )
    return bool(result.rowcount == 1)


def set_knock_on_line(*, session: Session, decision_id: int, ts: str | None) -> None:
    """The line's ts once posted; None gives the claim back for a later try."""
    values: dict[str, Any] = {"knock_on_ts": ts} if ts else {"knock_on_claimed_at": None}
    session.connection().execute(
        update(Decision).where(col(Decision.id) == decision_id).values(**values)
    )


def claim_shift_offer(*, session: Session, decision_id: int, now: datetime) -> bool:
    result = session.connection().execute(
        update(Decision)
        .where(col(Decision.id) == decision_id, col(Decision.later_shift_offered_at).is_(None))
        .values(later_shift_offered_at=now)
    )
    return bool(result.rowcount == 1)


def release_shift_offer(*, session: Session, decision_id: int) -> None:
    session.connection().execute(
        update(Decision).where(col(Decision.id) == decision_id).values(later_shift_offered_at=None)
    )


def claim_shift(*, session: Session, decision_id: int, now: datetime) -> bool:
    """The later milestones are shifted once: the first press wins, in the shifting transaction."""
    result = session.connection().execute(
        update(Decision)
        .where(
            col(Decision.id) == decision_id,
            col(Decision.option) == DecisionOption.DELAY,
            col(Decision.later_shifted_at).is_(None),
        )
        .values(later_shifted_at=now)
    )
    return bool(result.rowcount == 1)


# --- what the tick follows up -------------------------------------------------------------------


def decisions_to_follow_up(*, session: Session, stale: datetime, limit: int) -> list[int]:
    """Decisions whose outcome was posted and that still have something to send.

    A knock-on DM not yet sent (and not being sent), the thread line not yet posted, or a
    delay's shift offer not yet made. A decision without a poll needs no outcome message.
    """
    posted = or_(
        col(Decision.poll_id).is_(None),
        exists().where(
            col(DecisionPoll.id) == col(Decision.poll_id),
            col(DecisionPoll.outcome_posted_at).is_not(None),
        ),
    )
    unasked = exists().where(
        col(KnockOn.decision_id) == col(Decision.id),
        col(KnockOn.asked_at).is_(None),
        or_(col(KnockOn.claimed_at).is_(None), col(KnockOn.claimed_at) < stale),
    )
    any_knock_on = exists().where(col(KnockOn.decision_id) == col(Decision.id))
    no_line = and_(
        col(Decision.knock_on_ts).is_(None),
        or_(col(Decision.knock_on_claimed_at).is_(None), col(Decision.knock_on_claimed_at) < stale),
        any_knock_on,
    )
    no_offer = and_(
        col(Decision.option) == DecisionOption.DELAY,
        col(Decision.later_shift_offered_at).is_(None),
    )
    statement = (
        select(Decision.id)
        .where(posted, or_(unasked, no_line, no_offer))
        .order_by(col(Decision.id))
        .limit(limit)
    )
    return [int(i) for i in session.exec(statement) if i is not None]


def due_actions(*, session: Session, today: date, limit: int) -> list[int]:
    """Add-resources actions due by `today`, not done, whose owner was not reminded yet."""
    statement = (
        select(DecisionAction.id)
        .where(
            col(DecisionAction.reminded_at).is_(None),
            col(DecisionAction.due) <= today,
            col(DecisionAction.done_at).is_(None),
        )
        .order_by(col(DecisionAction.due), col(DecisionAction.id))
        .limit(limit)
    )
    return [int(i) for i in session.exec(statement) if i is not None]


def claim_reminder(*, session: Session, action_id: int, now: datetime) -> bool:
    result = session.connection().execute(
        update(DecisionAction)
        .where(col(DecisionAction.id) == action_id, col(DecisionAction.reminded_at).is_(None))
        .values(reminded_at=now)
    )
    return bool(result.rowcount == 1)


def release_reminder(*, session: Session, action_id: int) -> None:
    session.connection().execute(
        update(DecisionAction).where(col(DecisionAction.id) == action_id).values(reminded_at=None)
    )


def action_of_decision(*, session: Session, decision_id: int) -> DecisionAction | None:
    return session.exec(
        select(DecisionAction).where(col(DecisionAction.decision_id) == decision_id)
    ).first()


def decisions_by_milestone(
    *, session: Session, milestone_ids: Iterable[int] | None = None
) -> list[tuple[Decision, Milestone, DecisionAction | None]]:
    """Every decision with its milestone and action, oldest first (the plan file's `decisions:`)."""
    statement = (
        select(Decision, Milestone, DecisionAction)
        .join(Milestone, col(Milestone.id) == col(Decision.milestone_id))
        .outerjoin(DecisionAction, col(DecisionAction.decision_id) == col(Decision.id))
        .order_by(col(Decision.decided_at), col(Decision.id))
    )
    if milestone_ids is not None:
        statement = statement.where(col(Decision.milestone_id).in_(list(milestone_ids)))
    return [(d, m, a) for d, m, a in session.exec(statement)]
