"""Decision polls in the database: the votes of a poll as its tally reads them."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select, update

from storage.db import insert_or_skip
from storage.models import Ballot, DecisionPoll, Milestone, Person, PollState, Vote


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
