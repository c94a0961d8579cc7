"""Voting on a decision poll through the stand-in: leaders only, once each, changeable, refused when tampered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select, update

from bot.decisions.voting import VoteProblem, read_vote
from bot.errors import UserError
from scheduler.tick import run_tick
from standin.validation import check_blocks
from storage.models import AuditEntry, Ballot, DecisionPoll, Person, PollState
from tests.poll_support import (
    DECISIONS,
    answers_to,
    assert_no_ping,
    click_vote,
    open_poll,
    parent_message,
    vote_payload,
    votes_of,
    voting_plan,
)
from tests.query_fixtures import HOSTILE
from tests.slack_harness import row_counts


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return voting_plan(session, title=HOSTILE)


@pytest.fixture
def poll_id(services, plan):
    return open_poll(services, plan["launch"], initiative_title=HOSTILE, milestone_title=HOSTILE)


def tally_text(bot, poll_id) -> str:
    message = parent_message(bot.standin, bot.services, poll_id)
    check_blocks(message.blocks)
    return "\n".join(
        block["text"]["text"]
        for block in message.blocks
        if block.get("type") == "section" and block["text"]["text"].startswith("*Votes")
    )


def thread_lines(standin, poll_ts: str) -> list[str]:
    return [m.text for m in standin.messages(DECISIONS) if m.thread_ts == poll_ts]


def poll_ts(services, poll_id) -> str:
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None and poll.message_ts
        return poll.message_ts


def test_a_leader_s_vote_is_shown_with_their_name(bot, poll_id):
    click_vote(bot, poll_id, "delay", user="UCIO")
    assert "Delay to 27 Feb — 1: <@UCIO>" in tally_text(bot, poll_id)
    [vote] = votes_of(bot.services, poll_id)
    assert vote.option == "delay" and vote.changed_at is None
    confirmation = answers_to(bot.standin, "UCIO")
    assert confirmation == ["Your vote: Delay to 27 Feb"]
    call = bot.standin.calls("response_url")[-1]
    check_blocks(call.params["blocks"])
    assert "&lt;!channel&gt;" in call.params["blocks"][0]["text"]["text"]
    assert_no_ping(call.params["blocks"])
    assert call.params.get("replace_original") in (None, False)  # the poll message stays


def test_a_changed_vote_moves_in_the_tally_and_is_told_in_the_thread(bot, poll_id):
    click_vote(bot, poll_id, "delay", user="UCIO")
    click_vote(bot, poll_id, "delay", user="UCFO")
    click_vote(bot, poll_id, "descope", user="UCIO")
    text = tally_text(bot, poll_id)
    assert "Delay to 27 Feb — 1: <@UCFO>" in text
    assert "Cut scope — 1: <@UCIO>" in text
    assert len(votes_of(bot.services, poll_id)) == 2
    replies = [
        m for m in bot.standin.messages(DECISIONS) if m.thread_ts == poll_ts(bot.services, poll_id)
    ]
    assert len(replies) == 1
    check_blocks(replies[0].blocks)
    line = replies[0].blocks[0]["elements"][0]["text"]
    assert "<@UCIO> changed their vote from *Delay to 27 Feb* to *Cut scope*" in line
    with Session(bot.services.engine) as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.entity == "decision_poll").order_by(AuditEntry.id)
        ).all()
    assert [e.action for e in entries] == ["vote", "vote", "change_vote"]


def test_a_double_click_counts_once(bot, poll_id):
    request = vote_payload(bot, poll_id, "add_resources", user="UCOO")
    assert bot.action(request).status_code == 200
    assert bot.action(request).status_code == 200
    bot.wait_idle()
    [vote] = votes_of(bot.services, poll_id)
    assert vote.option == "add_resources" and vote.changed_at is None
    assert "Add resources — 1: <@UCOO>" in tally_text(bot, poll_id)
    assert not thread_lines(bot.standin, poll_ts(bot.services, poll_id))


def test_someone_not_a_leader_is_refused_and_nothing_is_recorded(bot, poll_id):
    before = row_counts(bot.services.engine)
    click_vote(bot, poll_id, "delay", user="UALICE")
    assert row_counts(bot.services.engine) == before
    [answer] = answers_to(bot.standin, "UALICE")
    assert "Only leaders vote on this" in answer
    assert not bot.standin.calls("chat.update")


@pytest.mark.parametrize(
    "tampered",
    [
        {"value": "{other}:delay"},  # the value names another poll than the block
        {"block_id": "decision_vote:{other}", "value": "{other}:delay"},  # another poll's button
        {"value": "{poll}:scrap_it", "action_id": "decision_vote:scrap_it"},  # unknown option
        {"value": "{poll}:descope"},  # option differs from the action_id's
        {"value": "garbage"},
        {"value": "{poll}:"},
        {"block_id": "decision_vote:x1", "value": "x1:delay"},
        {"value": "99999999999999999999999:delay"},
        {"block_id": "decision_vote:9999", "value": "9999:delay"},  # no such poll
    ],
)
def test_a_tampered_button_is_refused(bot, plan, poll_id, tampered):
    other = open_poll(bot.services, plan["ready"])  # a real poll, open too
    fields = {k: v.format(poll=poll_id, other=other) for k, v in tampered.items()}
    before = row_counts(bot.services.engine)
    click_vote(bot, poll_id, "delay", user="UCIO", **fields)
    assert row_counts(bot.services.engine) == before
    [answer] = answers_to(bot.standin, "UCIO")
    assert "nothing was recorded" in answer or "no longer exists" in answer


def test_a_button_clicked_on_another_poll_s_message_is_refused(bot, plan, services, poll_id):
    other = open_poll(services, plan["ready"])
    other_message = parent_message(bot.standin, services, other)
    before = row_counts(services.engine)
    # This poll's button, sent as if clicked on the other poll's message.
    click_vote(bot, poll_id, "delay", user="UCIO", message=other_message)
    assert row_counts(services.engine) == before
    [answer] = answers_to(bot.standin, "UCIO")
    assert "does not belong to this poll's message" in answer


def test_a_closed_poll_takes_no_vote(bot, services, poll_id):
    with Session(services.engine) as session:
        session.exec(
            update(DecisionPoll)
            .where(DecisionPoll.id == poll_id)
            .values(state=PollState.CLOSED, open_key=None, closed_at=datetime.now(UTC))
        )
        session.commit()
    before = row_counts(services.engine)
    click_vote(bot, poll_id, "delay", user="UCIO")
    assert row_counts(services.engine) == before
    [answer] = answers_to(bot.standin, "UCIO")
    assert "This poll is closed" in answer


def test_an_anonymous_poll_counts_without_names_and_keeps_the_first_vote(bot, plan, services):
    poll_id = open_poll(services, plan["launch"], anonymous=True)
    click_vote(bot, poll_id, "descope", user="UCIO")
    click_vote(bot, poll_id, "descope", user="UCFO")
    text = tally_text(bot, poll_id)
    assert "Cut scope — 2\n" in text
    assert "Voted: <@UCIO>, <@UCFO>" in text
    assert "<@UCIO>" not in text.split("Voted:")[0]
    votes = votes_of(services, poll_id)
    assert [v.option for v in votes] == [None, None]
    with Session(services.engine) as session:
        assert sorted(b.option for b in session.exec(select(Ballot)).all()) == [
            "descope",
            "descope",
        ]
        entries = session.exec(select(AuditEntry).where(AuditEntry.entity == "decision_poll")).all()
    assert len(entries) == 2
    assert all("descope" not in str(e.after) and "descope" not in str(e.before) for e in entries)
    # A second click (another option) is refused: the vote stays as it was.
    before = row_counts(services.engine)
    click_vote(bot, poll_id, "delay", user="UCIO")
    assert row_counts(services.engine) == before
    assert "cannot be changed" in answers_to(bot.standin, "UCIO")[-1]
    assert "Cut scope — 2\n" in tally_text(bot, poll_id)
    assert not thread_lines(bot.standin, poll_ts(services, poll_id))


def test_a_former_leader_s_vote_stays_and_is_marked(bot, services, poll_id):
    click_vote(bot, poll_id, "accept_risk", user="UCFO")
    with Session(services.engine) as session:
        session.exec(update(Person).where(Person.slack_id == "UCFO").values(is_leader=False))
        session.commit()
    click_vote(bot, poll_id, "delay", user="UCIO")  # any vote redraws the tally
    text = tally_text(bot, poll_id)
    assert "Accept the risk — 1: <@UCFO> (former leader)" in text
    # And they cannot vote again now.
    click_vote(bot, poll_id, "delay", user="UCFO")
    assert "Only leaders vote on this" in answers_to(bot.standin, "UCFO")[-1]
    assert [v.option for v in votes_of(services, poll_id)] == ["accept_risk", "delay"]


def test_a_vote_whose_redraw_failed_is_drawn_by_the_next_tick(bot, services, poll_id):
    bot.standin.fail_next("chat.update", status=200, error="internal_error")
    click_vote(bot, poll_id, "delay", user="UCIO")
    assert [v.option for v in votes_of(services, poll_id)] == ["delay"]
    assert "Delay to 27 Feb — 0" in tally_text(bot, poll_id)  # Slack still shows the old tally
    report = run_tick(services, datetime.now(UTC))
    assert "poll_tallies" in report.results and not report.failed.get("poll_tallies")
    assert "Delay to 27 Feb — 1: <@UCIO>" in tally_text(bot, poll_id)
    updates = len(bot.standin.calls("chat.update"))
    run_tick(services, datetime.now(UTC))  # nothing changed since: no further Slack call
    assert len(bot.standin.calls("chat.update")) == updates


@pytest.mark.parametrize(
    ("block_id", "value", "action_id", "code"),
    [
        ("decision_vote:7", "7:delay", "decision_vote:delay", None),
        ("decision_vote:7", "8:delay", "decision_vote:delay", VoteProblem.NOT_A_VOTE),
        ("decision_vote:7", "7:nope", "decision_vote:nope", VoteProblem.UNKNOWN_OPTION),
        ("decision_vote:7", "7:delay", "decision_vote:descope", VoteProblem.NOT_A_VOTE),
        ("decision_vote:-7", "-7:delay", "decision_vote:delay", VoteProblem.NOT_A_VOTE),
        ("other:7", "7:delay", "decision_vote:delay", VoteProblem.NOT_A_VOTE),
        (None, None, None, VoteProblem.NOT_A_VOTE),
    ],
)
def test_read_vote(block_id, value, action_id, code):
    if code is None:
        choice = read_vote(block_id=block_id, value=value, action_id=action_id)
        assert (choice.poll_id, choice.option) == (7, "delay")
        return
    with pytest.raises(UserError) as raised:
        read_vote(block_id=block_id, value=value, action_id=action_id)
    assert [p.code for p in raised.value.problems] == [code]
