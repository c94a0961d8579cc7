"""News in an open poll's thread: a dependency its milestone waited on delivered, a new pulse answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select, update

from standin.validation import check_blocks
from storage.models import DecisionPoll, Dependency, DependencyState, PollState
from templates.ids import DependencyIds, PulseIds
from tests.poll_support import DECISIONS, assert_no_ping, open_poll, voting_plan
from tests.query_fixtures import HOSTILE
from tests.test_pulse_answer_core import make_pulse


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return voting_plan(session, title=HOSTILE)


def thread_of(standin, services, poll_id):
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        ts = poll.message_ts
    return [m for m in standin.messages(DECISIONS) if m.thread_ts == ts]


def deliver(bot, services) -> None:
    with Session(services.engine) as session:
        dependency = session.exec(select(Dependency)).one()
        dependency.state = DependencyState.ACKNOWLEDGED
        dependency.acknowledged_at = datetime.now(UTC)
        session.add(dependency)
        session.commit()
        dependency_id = dependency.id
    payload = bot.block_action_payload(
        DependencyIds.DELIVERED,
        str(dependency_id),
        user_id="UBOB",
        channel_id="CMARKETING",
        block_id=f"{DependencyIds.ACTIONS_BLOCK}:{dependency_id}",
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()
    with Session(services.engine) as session:
        assert session.exec(select(Dependency)).one().state == DependencyState.DELIVERED


def answer_pulse(bot, services, plan) -> None:
    now = datetime.now(UTC)
    with Session(services.engine, expire_on_commit=False) as session:
        pulse = make_pulse(
            session,
            initiative=plan["beta"],
            due_at=now - timedelta(hours=2),
            next_due_at=now + timedelta(days=6),
        )
        session.commit()
    payload = bot.block_action_payload(
        PulseIds.OFF_TRACK,
        str(pulse.id),
        user_id="UALICE",
        channel_id="UALICE",
        block_id=f"{PulseIds.ACTIONS_BLOCK}:{pulse.id}",
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()


def test_a_delivered_dependency_is_told_in_the_poll_about_the_milestone_it_feeds(
    bot, plan, services
):
    poll_id = open_poll(services, plan["launch"], milestone_title=HOSTILE)
    deliver(bot, services)
    [line] = thread_of(bot.standin, services, poll_id)
    check_blocks(line.blocks)
    assert_no_ping(line.blocks)
    text = line.blocks[0]["text"]["text"]
    assert "delivered *Support staff trained for the beta*" in text and "<@UBOB>" in text
    assert "&lt;!channel&gt;" in text


def test_a_delivery_for_a_milestone_without_an_open_poll_tells_no_thread(bot, plan, services):
    poll_id = open_poll(services, plan["ready"])  # the dependency feeds beta-launch, not this
    deliver(bot, services)
    assert thread_of(bot.standin, services, poll_id) == []


def test_news_that_slack_refuses_is_logged_and_the_delivery_stands(bot, plan, services):
    poll_id = open_poll(services, plan["launch"])
    with Session(services.engine) as session:
        session.exec(update(DecisionPoll).values(channel_id="CRANDOM"))  # the bot is not there
        session.commit()
    deliver(bot, services)
    assert thread_of(bot.standin, services, poll_id) == []
    refused = [c for c in bot.standin.calls("chat.postMessage") if c.params.get("thread_ts")]
    assert refused and not refused[0].ok  # it was tried, and Slack said no
    # UBOB was told nothing about the poll: only the request's own answers reached him.
    for call in bot.standin.calls("response_url"):
        assert "went wrong" not in str(call.params.get("text", ""))


def test_a_new_pulse_answer_is_told_in_the_initiative_s_open_polls(bot, plan, services):
    launch_poll = open_poll(services, plan["launch"])
    closed_poll = open_poll(services, plan["ready"])
    with Session(services.engine) as session:
        session.exec(
            update(DecisionPoll)
            .where(DecisionPoll.id == closed_poll)
            .values(state=PollState.CLOSED, open_key=None)
        )
        session.commit()
    answer_pulse(bot, services, plan)
    [line] = thread_of(bot.standin, services, launch_poll)
    check_blocks(line.blocks)
    assert_no_ping(line.blocks)
    text = line.blocks[0]["text"]["text"]
    assert "New pulse answer for" in text and "<@UALICE>" in text and "*Off track*" in text
    assert thread_of(bot.standin, services, closed_poll) == []
