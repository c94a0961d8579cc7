"""Decision polls in the database: the votes of a poll as its tally reads them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlmodel import Session, col, select, update

from storage.models import Ballot, DecisionPoll, Person, Vote


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
