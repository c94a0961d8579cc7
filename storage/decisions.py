"""Decision polls in the database: slips and their framing, polls opened once per milestone, votes, closing.

Closing is decided by conditional UPDATEs (`WHERE state = 'open'`, `WHERE extended_at IS NULL`,
a lease on posting the outcome), so that two ticks at once close, extend or post a poll once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, literal, or_
from sqlmodel import Session, col, select, update

from storage.db import insert_or_skip
from storage.models import (
    Alert,
    AlertState,
    Ballot,
    Decision,
    DecisionPoll,
    Dependency,
    DependencyState,
    Initiative,
    InitiativeKpi,
    Kpi,
    Milestone,
    MilestoneStatus,
    Objective,
    Person,
    PollFraming,
    PollReminder,
    PollState,
    Team,
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


# --- slips and their framing ------------------------------------------------------------------


def slip_key(alert_id: int) -> str:
    """A slip is one raised alert: a condition that clears and comes back is a new alert row."""
    return f"alert:{alert_id}"


def unframed_slip_alerts(*, session: Session, kinds: Sequence[str]) -> list[Alert]:
    """Open alerts of `kinds` that no framing names yet (few: new alerts, at-risk ones of other causes)."""
    key = literal("alert:") + cast(col(Alert.id), String)
    framed = exists().where(col(PollFraming.slip_key) == key)
    statement = select(Alert).where(
        col(Alert.state) == AlertState.OPEN, col(Alert.kind).in_(list(kinds)), ~framed
    )
    return list(session.exec(statement.order_by(col(Alert.id))))


def insert_framing(*, session: Session, values: dict[str, Any]) -> int | None:
    """The slip's framing row, unless another process raised it first: its ID, or None."""
    statement = (
        insert_or_skip(session, PollFraming)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["slip_key"])
        .returning(col(PollFraming.id))
    )
    inserted = session.connection().execute(statement).first()
    return int(inserted[0]) if inserted else None


def framings_to_ask(*, session: Session, now: datetime, lease: timedelta) -> list[PollFraming]:
    """Framings whose owner has not been asked yet, and whose poll is not open (nor settled)."""
    statement = select(PollFraming).where(
        col(PollFraming.poll_id).is_(None),
        col(PollFraming.asked_at).is_(None),
        col(PollFraming.framed_at).is_(None),
        col(PollFraming.settled_at).is_(None),
        col(PollFraming.owner_id).is_not(None),
        or_(col(PollFraming.claimed_at).is_(None), col(PollFraming.claimed_at) < now - lease),
    )
    return list(session.exec(statement.order_by(col(PollFraming.id))))


def claim_framing_ask(
    *, session: Session, framing_id: int, now: datetime, lease: timedelta
) -> bool:
    """True for the one process that DMs the owner (a claim older than `lease` was abandoned)."""
    statement = (
        update(PollFraming)
        .where(
            col(PollFraming.id) == framing_id,
            col(PollFraming.asked_at).is_(None),
            or_(col(PollFraming.claimed_at).is_(None), col(PollFraming.claimed_at) < now - lease),
        )
        .values(claimed_at=now)
    )
    return session.connection().execute(statement).rowcount == 1


def mark_framing_asked(
    *, session: Session, framing_id: int, channel_id: str | None, ts: str | None, now: datetime
) -> None:
    session.connection().execute(
        update(PollFraming)
        .where(col(PollFraming.id) == framing_id)
        .values(asked_at=now, channel_id=channel_id, message_ts=ts)
    )


def framings_due(*, session: Session, now: datetime) -> list[PollFraming]:
    """Framings whose poll should open now: no poll yet, nothing settled, the framing window over."""
    statement = select(PollFraming).where(
        col(PollFraming.poll_id).is_(None),
        col(PollFraming.framing_due_at) <= now,
        col(PollFraming.settled_at).is_(None),
    )
    return list(session.exec(statement.order_by(col(PollFraming.framing_due_at))))


def pending_framing(*, session: Session, milestone_id: int) -> PollFraming | None:
    """The milestone's oldest slip still waiting for its poll (None: nothing slipped, or all polled)."""
    statement = select(PollFraming).where(
        col(PollFraming.milestone_id) == milestone_id,
        col(PollFraming.poll_id).is_(None),
        col(PollFraming.settled_at).is_(None),
    )
    return session.exec(statement.order_by(col(PollFraming.id))).first()


def framing_by_id(*, session: Session, framing_id: int) -> PollFraming | None:
    return session.get(PollFraming, framing_id, populate_existing=True)


def settle_framing(*, session: Session, framing_id: int, now: datetime) -> bool:
    statement = (
        update(PollFraming)
        .where(
            col(PollFraming.id) == framing_id,
            col(PollFraming.poll_id).is_(None),
            col(PollFraming.settled_at).is_(None),
        )
        .values(settled_at=now)
    )
    return session.connection().execute(statement).rowcount == 1


def record_framing(
    *,
    session: Session,
    framing_id: int,
    proposed_due: date,
    scope_cut: str | None,
    resources: str | None,
    by_id: int | None,
    now: datetime,
) -> bool:
    """The owner's framing, once, and only while its poll is not open."""
    statement = (
        update(PollFraming)
        .where(
            col(PollFraming.id) == framing_id,
            col(PollFraming.poll_id).is_(None),
            col(PollFraming.framed_at).is_(None),
        )
        .values(
            proposed_due=proposed_due,
            scope_cut=scope_cut,
            resources=resources,
            framed_at=now,
            framed_by_id=by_id,
        )
    )
    return session.connection().execute(statement).rowcount == 1


def attach_framing(*, session: Session, framing_id: int, poll_id: int) -> bool:
    """Point the slip at its poll, once: True for the one process that does (it tells the thread)."""
    statement = (
        update(PollFraming)
        .where(col(PollFraming.id) == framing_id, col(PollFraming.poll_id).is_(None))
        .values(poll_id=poll_id)
    )
    return session.connection().execute(statement).rowcount == 1


# --- polls: opened once per milestone, posted once ---------------------------------------------


def poll_open_key(milestone_id: int) -> str:
    return f"milestone:{milestone_id}"


def insert_poll(*, session: Session, values: dict[str, Any]) -> int | None:
    """Open the poll unless the milestone has one open already (the unique open key): its ID, or None."""
    statement = (
        insert_or_skip(session, DecisionPoll)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["open_key"])
        .returning(col(DecisionPoll.id))
    )
    inserted = session.connection().execute(statement).first()
    return int(inserted[0]) if inserted else None


def open_poll_of(*, session: Session, milestone_id: int) -> DecisionPoll | None:
    statement = select(DecisionPoll).where(
        col(DecisionPoll.open_key) == poll_open_key(milestone_id)
    )
    return session.exec(statement.execution_options(populate_existing=True)).first()


def unposted_polls(*, session: Session) -> list[DecisionPoll]:
    """Open polls whose parent message is not in Slack yet: new, refused or crashed posts."""
    statement = select(DecisionPoll).where(
        col(DecisionPoll.state) == PollState.OPEN, col(DecisionPoll.message_ts).is_(None)
    )
    return list(session.exec(statement.order_by(col(DecisionPoll.id))))


def claim_poll_post(*, session: Session, poll_id: int, now: datetime, lease: timedelta) -> bool:
    """True for the one process that posts the poll (a claim older than `lease` was abandoned)."""
    statement = (
        update(DecisionPoll)
        .where(
            col(DecisionPoll.id) == poll_id,
            col(DecisionPoll.message_ts).is_(None),
            or_(col(DecisionPoll.claimed_at).is_(None), col(DecisionPoll.claimed_at) < now - lease),
        )
        .values(claimed_at=now)
    )
    return session.connection().execute(statement).rowcount == 1


def release_poll_claim(*, session: Session, poll_id: int) -> None:
    session.connection().execute(
        update(DecisionPoll)
        .where(col(DecisionPoll.id) == poll_id, col(DecisionPoll.message_ts).is_(None))
        .values(claimed_at=None)
    )


def mark_poll_posted(
    *, session: Session, poll_id: int, channel_id: str, ts: str, shown: str | None
) -> None:
    session.connection().execute(
        update(DecisionPoll)
        .where(col(DecisionPoll.id) == poll_id)
        .values(channel_id=channel_id, message_ts=ts, shown=shown)
    )


# --- what a poll states -----------------------------------------------------------------------


def later_milestones(*, session: Session, milestone: Milestone) -> list[Milestone]:
    """The initiative's open milestones due after this one."""
    statement = select(Milestone).where(
        col(Milestone.initiative_id) == milestone.initiative_id,
        col(Milestone.id) != milestone.id,
        col(Milestone.status) == MilestoneStatus.OPEN,
        col(Milestone.archived).is_(False),
        col(Milestone.due) > milestone.due,
    )
    return list(session.exec(statement.order_by(col(Milestone.due), col(Milestone.id))))


def waiting_dependencies(
    *, session: Session, initiative: Initiative, milestone: Milestone
) -> list[tuple[Dependency, str]]:
    """Other teams' open dependencies that wait on this milestone, with the waiting team's name.

    What another initiative needs from this initiative's team, undelivered, needed on or after
    the milestone's due date: the team delivers after the milestone, so a slip reaches them.
    """
    statement = (
        select(Dependency, col(Team.name))
        .join(Initiative, col(Initiative.id) == col(Dependency.initiative_id))
        .join(Team, col(Team.id) == col(Initiative.team_id))
        .where(
            col(Dependency.provider_team_id) == initiative.team_id,
            col(Dependency.initiative_id) != initiative.id,
            col(Initiative.team_id) != initiative.team_id,
            col(Initiative.archived).is_(False),
            col(Dependency.archived).is_(False),
            col(Dependency.state) != DependencyState.DELIVERED,
            col(Dependency.needed_by) >= milestone.due,
        )
        .order_by(col(Dependency.needed_by), col(Dependency.id))
    )
    return [(dependency, str(name)) for dependency, name in session.exec(statement)]


def initiative_kpis(*, session: Session, initiative_id: int) -> list[Kpi]:
    statement = (
        select(Kpi)
        .join(InitiativeKpi, col(InitiativeKpi.kpi_id) == col(Kpi.id))
        .where(col(InitiativeKpi.initiative_id) == initiative_id, col(Kpi.archived).is_(False))
        .order_by(col(Kpi.key))
    )
    return list(session.exec(statement))


def milestone_by_key(*, session: Session, key: str) -> Milestone | None:
    return session.exec(select(Milestone).where(col(Milestone.key) == key)).first()


def live_milestone_keys(*, session: Session) -> list[str]:
    """Keys of milestones still in the plan, for "did you mean"."""
    statement = (
        select(col(Milestone.key))
        .join(Initiative, col(Initiative.id) == col(Milestone.initiative_id))
        .where(col(Milestone.archived).is_(False), col(Initiative.archived).is_(False))
    )
    return list(session.exec(statement))


def blocked_feeding(*, session: Session, milestone_id: int, today: date) -> Dependency | None:
    """The first dependency feeding the milestone that is blocked, or undelivered past its day."""
    statement = select(Dependency).where(
        col(Dependency.milestone_id) == milestone_id,
        col(Dependency.archived).is_(False),
        col(Dependency.state) != DependencyState.DELIVERED,
        or_(col(Dependency.state) == DependencyState.BLOCKED, col(Dependency.needed_by) < today),
    )
    return session.exec(statement.order_by(col(Dependency.needed_by), col(Dependency.id))).first()


def dependency_with_team(
    *, session: Session, dependency_id: int | None
) -> tuple[Dependency, str] | None:
    """A dependency and its provider team's name (what a blocked slip's poll names)."""
    if dependency_id is None:
        return None
    statement = (
        select(Dependency, col(Team.name))
        .join(Team, col(Team.id) == col(Dependency.provider_team_id))
        .where(col(Dependency.id) == dependency_id)
    )
    row = session.exec(statement).first()
    return (row[0], str(row[1])) if row is not None else None


# --- voting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteWrite:
    """What one vote did in the database.

    `state` is "closed" (the poll was not open: nothing written), "cast" (a first vote),
    "changed" (another option than before), "same" (a repeat: a double click or a retry), or
    "kept" (an anonymous voter clicking again: an anonymous vote cannot be changed).
    """

    state: str
    previous: str | None = None  # the option before a change (named polls only)


def lock_open_poll(session: Session, poll_id: int) -> bool:
    """Hold the poll's row until the transaction ends, if it is still open; False otherwise.

    A conditional UPDATE rather than a read: it takes the row lock on PostgreSQL (and the write
    lock on SQLite) and checks the state in one statement, so a poll closing concurrently
    either waits for this vote to commit (and counts it) or has closed before it (and the vote
    is refused). Whoever closes a poll does so with `UPDATE ... WHERE state = 'open'`.
    """
    result = session.connection().execute(
        update(DecisionPoll)
        .where(col(DecisionPoll.id) == poll_id, col(DecisionPoll.state) == PollState.OPEN)
        .values(state=PollState.OPEN)
    )
    return bool(result.rowcount == 1)


def record_vote(
    session: Session,
    *,
    poll_id: int,
    voter_id: int,
    option: str,
    anonymous: bool,
    now: datetime,
) -> VoteWrite:
    """Record `voter_id`'s vote on an open poll, at most one row per (poll, voter), ever.

    The vote is one `INSERT ... ON CONFLICT (poll_id, voter_id) DO UPDATE` (DO NOTHING when
    anonymous), made under the poll's row lock (`lock_open_poll`), so double clicks, retries and
    concurrent requests leave one row, and no vote lands on a poll that has closed. An anonymous
    vote's choice is a `Ballot`, added only by the request whose insert created the vote.
    """
    if not lock_open_poll(session, poll_id):
        return VoteWrite("closed")
    table = Vote.__table__  # type: ignore[attr-defined]
    if anonymous:
        statement = (
            insert_or_skip(session, Vote)
            .values(poll_id=poll_id, voter_id=voter_id, option=None, voted_at=now)
            .on_conflict_do_nothing(index_elements=["poll_id", "voter_id"])
            .returning(table.c.id)
        )
        if session.connection().execute(statement).first() is None:
            return VoteWrite("kept")
        session.add(Ballot(id=str(uuid.uuid4()), poll_id=poll_id, option=option))
        session.flush()
        return VoteWrite("cast")
    # Under the poll's lock no other vote on this poll is being written: this read is current.
    previous = session.exec(
        select(Vote.option).where(Vote.poll_id == poll_id, Vote.voter_id == voter_id)
    ).first()
    insert = insert_or_skip(session, Vote).values(
        poll_id=poll_id, voter_id=voter_id, option=option, voted_at=now, changed_at=None
    )
    statement = insert.on_conflict_do_update(
        index_elements=["poll_id", "voter_id"],
        set_={"option": insert.excluded.option, "changed_at": insert.excluded.voted_at},
        # A repeat of the same option writes nothing: its first time stays the vote's time.
        where=table.c.option.is_distinct_from(insert.excluded.option),
    ).returning(table.c.changed_at)
    written = session.connection().execute(statement).first()
    if written is None:
        return VoteWrite("same", previous=previous)
    if written[0] is None:
        return VoteWrite("cast")
    return VoteWrite("changed", previous=previous)


def open_poll_of_milestone(session: Session, milestone_id: int) -> DecisionPoll | None:
    """The milestone's open poll, if any (at most one: `open_key` is unique)."""
    return session.exec(
        select(DecisionPoll).where(
            DecisionPoll.open_key == f"milestone:{milestone_id}",
            DecisionPoll.state == PollState.OPEN,
        )
    ).first()


def posted_open_poll_ids(session: Session) -> list[int]:
    """Open polls whose parent message is posted: those a tick keeps drawn right."""
    ids = session.exec(
        select(DecisionPoll.id)
        .where(DecisionPoll.state == PollState.OPEN, col(DecisionPoll.message_ts).is_not(None))
        .order_by(col(DecisionPoll.id))
    ).all()
    return [poll_id for poll_id in ids if poll_id is not None]


def open_polls_of_initiative(session: Session, initiative_id: int) -> list[DecisionPoll]:
    """Open polls about any milestone of the initiative (news of its pulse answers goes there)."""
    return list(
        session.exec(
            select(DecisionPoll)
            .join(Milestone, col(Milestone.id) == col(DecisionPoll.milestone_id))
            .where(Milestone.initiative_id == initiative_id, DecisionPoll.state == PollState.OPEN)
            .order_by(col(DecisionPoll.id))
        ).all()
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


def lock_poll_to_close(session: Session, poll_id: int) -> DecisionPoll | None:
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
