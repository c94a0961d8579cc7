"""Decision polls in the database: the votes of a poll as its tally reads them, and its closing.

Closing is decided by conditional UPDATEs (`WHERE state = 'open'`, `WHERE extended_at IS NULL`,
a lease on posting the outcome), so that two ticks at once close, extend or post a poll once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_
from sqlmodel import Session, col, select, update

from storage.db import insert_or_skip
from storage.models import (
    Ballot,
    Decision,
    DecisionPoll,
    Initiative,
    Milestone,
    MilestoneStatus,
    Objective,
    Person,
    PollReminder,
    PollState,
    Vote,
)


@dataclass(frozen=True)
class Voter:
    person_id: int
    slack_id: str | None
    name: str
    is_leader: bool  # False: a former leader, whose vote stays but no longer counts for quorum


@dataclass(frozen=True)
class PollVotes:
    """Who voted, and for what: by voter in a named poll, as bare counts in an anonymous one."""

    voters: list[tuple[Voter, str | None]]  # (voter, option); option is None when anonymous
    ballots: Counter[str] = field(default_factory=Counter)  # anonymous polls only

    def counts(self) -> Counter[str]:
        named = Counter(option for _, option in self.voters if option is not None)
        return named + self.ballots


def poll_votes(session: Session, poll: DecisionPoll) -> PollVotes:
    """The votes of one poll in the order they were first cast."""
    rows = session.exec(
        select(Vote, Person)
        .join(Person, col(Person.id) == col(Vote.voter_id))
        .where(Vote.poll_id == poll.id)
        .order_by(col(Vote.voted_at), col(Vote.id))
    ).all()
    voters = [
        (
            Voter(
                person_id=int(person.id or 0),
                slack_id=person.slack_id,
                name=person.name,
                is_leader=person.is_leader and person.active,
            ),
            vote.option,
        )
        for vote, person in rows
    ]
    ballots: Counter[str] = Counter()
    if poll.anonymous:
        ballots.update(session.exec(select(Ballot.option).where(Ballot.poll_id == poll.id)).all())
    return PollVotes(voters=voters, ballots=ballots)


def current_leaders(session: Session) -> list[Person]:
    """The plan's leaders today: who may vote, and whom quorum counts."""
    return list(
        session.exec(
            select(Person)
            .where(col(Person.is_leader), col(Person.active))
            .order_by(col(Person.name), col(Person.id))
        ).all()
    )


def mark_poll_shown(session: Session, poll_id: int, fingerprint: str) -> None:
    """Record what the poll's message now shows in Slack."""
    session.exec(
        update(DecisionPoll).where(col(DecisionPoll.id) == poll_id).values(shown=fingerprint)
    )


# --- closing --------------------------------------------------------------------------------


def polls_to_settle(session: Session, now: datetime) -> list[int]:
    """Open polls with something to decide at `now`, oldest deadline first.

    Past their deadline; or every current leader has voted; or their milestone was archived,
    done or descoped. One probe of ix_decision_poll_state_deadline when no poll is open.
    """
    leader = (col(Person.is_leader), col(Person.active))
    has_voted = exists().where(
        col(Vote.poll_id) == col(DecisionPoll.id), col(Vote.voter_id) == col(Person.id)
    )
    someone_has_not_voted = exists().where(*leader, ~has_voted)
    any_leader = exists().where(*leader)
    milestone_gone = exists().where(
        col(Milestone.id) == col(DecisionPoll.milestone_id),
        or_(col(Milestone.archived), col(Milestone.status) != MilestoneStatus.OPEN),
    )
    statement = (
        select(col(DecisionPoll.id))
        .where(
            col(DecisionPoll.state) == PollState.OPEN,
            or_(
                col(DecisionPoll.deadline) <= now,
                milestone_gone,
                and_(any_leader, ~someone_has_not_voted),
            ),
        )
        .order_by(col(DecisionPoll.deadline), col(DecisionPoll.id))
    )
    return [int(poll_id) for poll_id in session.exec(statement) if poll_id is not None]


def lock_open_poll(session: Session, poll_id: int) -> DecisionPoll | None:
    """The poll, locked for this transaction (PostgreSQL), while it is open; None once it is not.

    A second closer waits here for the first to commit, then reads the poll closed.
    """
    statement = (
        select(DecisionPoll)
        .where(col(DecisionPoll.id) == poll_id, col(DecisionPoll.state) == PollState.OPEN)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(statement).first()


@dataclass(frozen=True)
class MilestoneState:
    status: str
    archived: bool
    objective_owner_id: int | None  # breaks a tie when a leader who voted


def milestone_state(session: Session, milestone_id: int) -> MilestoneState | None:
    row = session.exec(
        select(col(Milestone.status), col(Milestone.archived), col(Objective.owner_id))
        .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
        .outerjoin(Objective, col(Objective.id) == col(Initiative.objective_id))
        .where(col(Milestone.id) == milestone_id)
    ).first()
    if row is None:
        return None
    status, archived, owner_id = row
    return MilestoneState(status=str(status), archived=bool(archived), objective_owner_id=owner_id)


def close_poll(session: Session, poll_id: int, *, outcome: str, now: datetime) -> bool:
    """Close an open poll with `outcome`; True only for the one process whose update hit the row."""
    statement = (
        update(DecisionPoll)
        .where(col(DecisionPoll.id) == poll_id, col(DecisionPoll.state) == PollState.OPEN)
        .values(state=PollState.CLOSED, open_key=None, closed_at=now, outcome=outcome)
    )
    return session.connection().execute(statement).rowcount == 1


def extend_poll(session: Session, poll_id: int, *, deadline: datetime, now: datetime) -> bool:
    """Move an open poll's deadline, once ever; True for the one process that did."""
    statement = (
        update(DecisionPoll)
        .where(
            col(DecisionPoll.id) == poll_id,
            col(DecisionPoll.state) == PollState.OPEN,
            col(DecisionPoll.extended_at).is_(None),
        )
        .values(deadline=deadline, extended_at=now)
    )
    return session.connection().execute(statement).rowcount == 1


def claim_reminders(
    session: Session, poll_id: int, person_ids: Iterable[int], *, now: datetime
) -> list[int]:
    """Claim one reminder per (poll, person) before its DM is sent: the people newly claimed.

    A person already claimed (another process, an earlier pass) is skipped by the primary key.
    """
    rows = [{"poll_id": poll_id, "person_id": p, "claimed_at": now} for p in person_ids]
    if not rows:
        return []
    statement = (
        insert_or_skip(session, PollReminder)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(col(PollReminder.person_id))
    )
    return sorted(int(row[0]) for row in session.connection().execute(statement))


def take_over_stale_reminders(
    session: Session, *, now: datetime, lease: timedelta
) -> list[tuple[int, int]]:
    """(poll, person) reminders of open polls claimed over `lease` ago and never sent, now ours.

    Left by a process that died, or whose DM Slack refused; the claim is stamped again, so a
    second process skips them.
    """
    rows = session.exec(
        select(col(PollReminder.poll_id), col(PollReminder.person_id), col(PollReminder.claimed_at))
        .join(DecisionPoll, col(DecisionPoll.id) == col(PollReminder.poll_id))
        .where(
            col(PollReminder.sent_at).is_(None),
            col(PollReminder.claimed_at) < now - lease,
            col(DecisionPoll.state) == PollState.OPEN,
        )
    ).all()
    mine = []
    for poll_id, person_id, claimed_at in rows:
        taken = session.connection().execute(
            update(PollReminder)
            .where(
                col(PollReminder.poll_id) == poll_id,
                col(PollReminder.person_id) == person_id,
                col(PollReminder.claimed_at) == claimed_at,
                col(PollReminder.sent_at).is_(None),
            )
            .values(claimed_at=now)
        )
        if taken.rowcount == 1:
            mine.append((int(poll_id), int(person_id)))
    return mine


def slack_ids_of(session: Session, person_ids: Iterable[int]) -> dict[int, str]:
    """Person ID → Slack ID, for those who have one."""
    wanted = set(person_ids)
    if not wanted:
        return {}
    rows = session.exec(
        select(col(Person.id), col(Person.slack_id)).where(col(Person.id).in_(wanted))
    ).all()
    return {int(pid): str(sid) for pid, sid in rows if pid is not None and sid}


def mark_reminder_sent(session: Session, poll_id: int, person_id: int, now: datetime) -> None:
    session.connection().execute(
        update(PollReminder)
        .where(col(PollReminder.poll_id) == poll_id, col(PollReminder.person_id) == person_id)
        .values(sent_at=now)
    )


def unposted_outcomes(session: Session) -> list[int]:
    """Closed polls whose outcome is not yet in their thread (a failed or crashed post)."""
    statement = (
        select(col(DecisionPoll.id))
        .where(
            col(DecisionPoll.state) == PollState.CLOSED,
            col(DecisionPoll.outcome_posted_at).is_(None),
            col(DecisionPoll.message_ts).is_not(None),
        )
        .order_by(col(DecisionPoll.closed_at), col(DecisionPoll.id))
    )
    return [int(poll_id) for poll_id in session.exec(statement) if poll_id is not None]


@dataclass(frozen=True)
class OutcomeClaim:
    taken_over: bool  # an earlier claim lapsed: its process may have posted before it died
    since: datetime | None  # when that earlier claim was taken


def claim_outcome(
    session: Session, poll_id: int, *, now: datetime, lease: timedelta
) -> OutcomeClaim | None:
    """The lease on posting a closed poll's outcome: None when it is posted or someone holds it."""
    poll = session.get(DecisionPoll, poll_id, populate_existing=True)
    if poll is None or poll.state != PollState.CLOSED or poll.outcome_posted_at is not None:
        return None
    before = poll.outcome_claimed_at
    if before is not None and before >= now - lease:
        return None
    statement = (
        update(DecisionPoll)
        .where(
            col(DecisionPoll.id) == poll_id,
            col(DecisionPoll.outcome_posted_at).is_(None),
            col(DecisionPoll.outcome_claimed_at).is_(None)
            if before is None
            else col(DecisionPoll.outcome_claimed_at) == before,
        )
        .values(outcome_claimed_at=now)
    )
    if session.connection().execute(statement).rowcount != 1:
        return None
    return OutcomeClaim(taken_over=before is not None, since=before)


def release_outcome_claim(session: Session, poll_id: int) -> None:
    """Give the post back to the next tick (Slack refused it or was unavailable)."""
    session.connection().execute(
        update(DecisionPoll).where(col(DecisionPoll.id) == poll_id).values(outcome_claimed_at=None)
    )


def mark_outcome_posted(session: Session, poll_id: int, now: datetime) -> None:
    session.connection().execute(
        update(DecisionPoll).where(col(DecisionPoll.id) == poll_id).values(outcome_posted_at=now)
    )


def decision_for_poll(session: Session, poll_id: int) -> Decision | None:
    return session.exec(select(Decision).where(col(Decision.poll_id) == poll_id)).first()
