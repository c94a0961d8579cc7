"""Votes at once: many threads voting and changing leave one row per leader; none lands after a close.

Meant for PostgreSQL (PLANPULSE_TEST_DATABASE_URL), where the requests truly run in parallel;
on SQLite the same tests check that the writes serialise without losing or doubling a vote.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select, update

from bot.decisions.poll_message import OPTIONS
from bot.decisions.voting import VoteProblem, cast_vote
from bot.errors import UserError
from storage.db import session_scope
from storage.models import AuditEntry, DecisionPoll, PollState, Vote
from tests import factories as f
from tests.poll_support import open_poll, voting_plan

LEADERS = 8
CLICKS_EACH = 6
NOW = datetime(2027, 2, 2, 15, tzinfo=UTC)


@pytest.fixture
def poll(services):
    with Session(services.engine, expire_on_commit=False) as session:
        plan = voting_plan(session)
        leaders = [
            f.person(session, slack_id=f"ULEAD{n:03d}", name=f"Leader {n}", is_leader=True)
            for n in range(LEADERS)
        ]
        session.commit()
    return open_poll(services, plan["launch"], post=False), [p.slack_id for p in leaders]


def _click(services, poll_id, user, option):
    return cast_vote(
        services,
        user=user,
        block_id=f"decision_vote:{poll_id}",
        value=f"{poll_id}:{option}",
        action_id=f"decision_vote:{option}",
        channel_id=None,
        message_ts=None,
        now=NOW,
    )


def _in_parallel(jobs):
    barrier = threading.Barrier(len(jobs))
    results, errors = [], []
    lock = threading.Lock()

    def run(job):
        barrier.wait()
        try:
            outcome = job()
        except UserError as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def test_many_clicks_at_once_leave_one_vote_per_leader(services, poll):
    poll_id, leaders = poll
    rng = random.Random(10)
    clicks = [(user, rng.choice(OPTIONS)) for user in leaders for _ in range(CLICKS_EACH)]
    jobs = [
        (lambda user=user, option=option: _click(services, poll_id, user, option))
        for user, option in clicks
    ]
    results, errors = _in_parallel(jobs)
    assert errors == [] and len(results) == len(jobs)
    with Session(services.engine) as session:
        votes = session.exec(select(Vote).where(Vote.poll_id == poll_id)).all()
        audited = session.exec(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "decision_poll")
        ).one()
    assert len(votes) == LEADERS
    assert len({v.voter_id for v in votes}) == LEADERS
    # Exactly one first vote per leader; every change and only a change was audited.
    assert sum(1 for r in results if r.state == "cast") == LEADERS
    assert audited == sum(1 for r in results if r.state in ("cast", "changed"))


def test_no_vote_lands_on_a_poll_closed_at_the_same_time(services, poll):
    poll_id, leaders = poll
    counted_at_close: list[int] = []

    def close():
        with session_scope(services.engine) as session:
            # The way a closer must do it: the state change first (it waits for votes in
            # flight), then the count, in the same transaction.
            closed = session.connection().execute(
                update(DecisionPoll)
                .where(col(DecisionPoll.id) == poll_id, col(DecisionPoll.state) == PollState.OPEN)
                .values(state=PollState.CLOSED, open_key=None, closed_at=NOW)
            )
            assert closed.rowcount == 1
            counted_at_close.append(
                session.exec(
                    select(func.count()).select_from(Vote).where(Vote.poll_id == poll_id)
                ).one()
            )

    jobs = [(lambda user=user: _click(services, poll_id, user, "delay")) for user in leaders]
    jobs.insert(LEADERS // 2, close)
    _, errors = _in_parallel(jobs)
    assert all(e.problems[0].code == VoteProblem.CLOSED for e in errors)
    with Session(services.engine) as session:
        stored = session.exec(
            select(func.count()).select_from(Vote).where(Vote.poll_id == poll_id)
        ).one()
    assert counted_at_close == [stored]  # what the closer counted is every vote there is
    assert stored + len(errors) == LEADERS
