"""The whole decision loop across its parts: a slip, its framing, the poll, leaders' votes, the plan moved."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, select

from scheduler.tick import run_tick
from storage.db import session_scope
from storage.models import (
    Alert,
    AlertState,
    Decision,
    DecisionPoll,
    Milestone,
    PollState,
)
from templates.ids import AlertKinds, MessageEvents
from tests import factories
from tests.poll_support import click_vote
from tests.test_decision_opening import NEW_YORK, build_plan, tagged


def test_a_missed_milestone_is_decided_by_leaders_and_the_plan_moves(bot, standin) -> None:
    services = bot.services
    plan = build_plan(services.engine, due=date(2027, 1, 15))  # a Friday
    with session_scope(services.engine) as session:
        factories.person(session, slack_id="UCMO", name="Cleo", is_leader=True)

    # Monday: the slip is seen, its owner asked to frame the options.
    run_tick(services, datetime(2027, 1, 18, 10, tzinfo=NEW_YORK))
    assert len(tagged(standin, "UALICE", MessageEvents.FRAMING)) == 1

    # Tuesday, 8 working hours later: no framing came, so the poll opens with the slip so far.
    run_tick(services, datetime(2027, 1, 19, 10, tzinfo=NEW_YORK))
    with Session(services.engine) as session:
        [poll] = session.exec(select(DecisionPoll)).all()
    assert poll.state == PollState.OPEN and poll.proposed_due == date(2027, 1, 19)
    assert len(tagged(standin, "CDECISIONS", MessageEvents.POLL)) == 1

    # Both leaders vote to delay; the tally names them.
    click_vote(bot, poll.id, "delay", user="UCFO")
    click_vote(bot, poll.id, "delay", user="UCMO")
    [parent] = tagged(standin, "CDECISIONS", MessageEvents.POLL)
    tally = str(parent.blocks)
    assert "<@UCFO>" in tally and "<@UCMO>" in tally

    # The next tick closes it: every leader voted. The outcome is broadcast in the thread.
    closing = datetime(2027, 1, 19, 10, 5, tzinfo=NEW_YORK)
    run_tick(services, closing)
    with Session(services.engine) as session:
        closed = session.get(DecisionPoll, poll.id)
        [decision] = session.exec(select(Decision)).all()
        milestone = session.get(Milestone, plan["ready"])
        missed = session.exec(select(Alert).where(Alert.kind == AlertKinds.MILESTONE_MISSED)).all()
    assert closed is not None and closed.state == PollState.CLOSED and closed.outcome == "delay"
    assert decision.option == "delay" and decision.new_due == date(2027, 1, 19)
    assert milestone is not None and milestone.due == date(2027, 1, 19)
    assert milestone.original_due == date(2027, 1, 15)
    # The alert the decision settled resolved itself.
    assert [a.state for a in missed] == [AlertState.RESOLVED]
    outcome = tagged(standin, "CDECISIONS", MessageEvents.POLL_OUTCOME)
    assert len(outcome) == 1 and outcome[0].thread_ts == poll.message_ts and outcome[0].broadcast
    # The parent message is closed: no vote buttons left.
    [parent] = tagged(standin, "CDECISIONS", MessageEvents.POLL)
    assert not [b for b in parent.blocks if b["type"] == "actions"]

    # A further tick changes nothing and applies nothing twice.
    standin.reset_calls()
    run_tick(services, datetime(2027, 1, 19, 10, 6, tzinfo=NEW_YORK))
    with Session(services.engine) as session:
        assert len(session.exec(select(Decision)).all()) == 1
    assert [c.method for c in standin.calls() if c.method.startswith("chat.")] == []
