"""Closing decision polls on the tick, against the stand-in with an explicit `now`: deadline, all voted, quorum and its one extension, ties, withdrawal, 429s, crash recovery, two closers at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.decisions.closing import CLAIM_LEASE, close_due_polls
from bot.slack.gateway import MessageTag
from scheduler.tick import run_tick
from standin.validation import check_blocks
from storage.models import DecisionPoll, MilestoneStatus, PollReminder, PollState
from templates.ids import MessageEvents
from tests import poll_fixtures as pf
from tests.poll_fixtures import DECISIONS

OPENED = datetime(2027, 1, 18, 15, 0, tzinfo=UTC)
DEADLINE = OPENED + timedelta(hours=48)
AFTER = DEADLINE + timedelta(minutes=1)
BEFORE = DEADLINE - timedelta(hours=1)


@pytest.fixture
def plan(services) -> pf.PollPlan:
    return pf.poll_plan(services)


def _replies(standin, poll_id: int) -> list:
    """The poll's outcome replies in its thread."""
    return [
        m
        for m in standin.messages(DECISIONS)
        if m.thread_ts is not None
        and (m.metadata or {}).get("event_type") == MessageEvents.POLL_OUTCOME
        and (m.metadata or {}).get("event_payload", {}).get("poll_id") == poll_id
    ]


def _outcome_posts(standin) -> list:
    return [
        c
        for c in standin.calls("chat.postMessage")
        if c.ok and c.params.get("channel") == DECISIONS and c.params.get("thread_ts")
    ]


def _parent(standin, poll) -> object:
    return next(m for m in standin.messages(DECISIONS) if m.ts == poll.message_ts)


def _has_buttons(message) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks)


def _dms(standin, user: str) -> list:
    return [c for c in standin.calls("chat.postMessage") if c.params.get("channel") == user]


# --- closing ------------------------------------------------------------------------------


def test_at_the_deadline_the_poll_closes_once_with_the_winner(services, standin, plan) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCIO"], "delay", at=OPENED)

    standin.reset_calls()
    early = close_due_polls(services, BEFORE)
    assert early.closed == 0
    assert standin.calls() == []  # quorum is met but one leader has not voted: nothing due
    assert pf.load_poll(services, poll_id).state == PollState.OPEN

    report = close_due_polls(services, AFTER)
    assert (report.closed, report.outcomes_posted) == (1, 1)
    poll = pf.load_poll(services, poll_id)
    assert (poll.state, poll.outcome, poll.open_key) == (PollState.CLOSED, "delay", None)
    assert poll.closed_at == AFTER and poll.outcome_posted_at == AFTER
    [decision] = pf.decisions(services)
    assert decision.option == "delay" and decision.poll_id == poll_id
    assert decision.new_due == poll.proposed_due
    assert decision.votes["counts"]["delay"] == 2
    assert decision.votes["non_voters"] == ["UCOO"]

    [reply] = _replies(standin, poll_id)
    assert reply.thread_ts == poll.message_ts and reply.broadcast
    assert "Decided: Delay to 27 Feb" in reply.text
    body = str(reply.blocks)
    assert "<@UCFO>, <@UCIO>" in body and "Did not vote: <@UCOO>" in body
    parent = _parent(standin, poll)
    assert not _has_buttons(parent) and parent.text.startswith("Decision closed")

    standin.reset_calls()
    again = close_due_polls(services, AFTER + timedelta(minutes=5))
    assert (again.closed, again.outcomes_posted) == (0, 0)
    assert standin.calls() == []
    assert len(pf.decisions(services)) == 1 and len(_replies(standin, poll_id)) == 1


def test_once_every_leader_voted_the_next_tick_closes_it_before_the_deadline(
    services, standin, plan
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    for leader, option in (("UCFO", "descope"), ("UCIO", "descope"), ("UCOO", "delay")):
        pf.vote(services, poll_id, plan.leaders[leader], option, at=OPENED)

    report = run_tick(services, BEFORE)
    assert report.ok, report.failed
    assert report.results["decision_polls"].closed == 1  # type: ignore[attr-defined]
    poll = pf.load_poll(services, poll_id)
    assert poll.outcome == "descope" and poll.closed_at == BEFORE
    [reply] = _replies(standin, poll_id)
    assert "Every leader voted." in str(reply.blocks)
    assert "Drop the &lt;b&gt;export&lt;/b&gt; &amp; reports" in str(reply.blocks)


def test_a_tick_with_an_open_poll_not_yet_due_calls_slack_for_nothing(
    services, standin, plan
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    standin.reset_calls()
    for _ in range(2):
        report = close_due_polls(services, BEFORE)
        assert report.closed == report.extended == report.reminded == 0
    assert standin.calls() == []


def test_a_deadline_passed_while_the_bot_was_down_is_honoured_at_the_next_tick_once(
    services, standin, plan
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "accept_risk", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCOO"], "accept_risk", at=OPENED)

    back = DEADLINE + timedelta(days=5)
    first = close_due_polls(services, back)
    second = close_due_polls(services, back + timedelta(minutes=1))
    assert (first.closed, second.closed) == (1, 0)
    assert pf.load_poll(services, poll_id).closed_at == back
    assert [d.option for d in pf.decisions(services)] == ["accept_risk"]
    assert len(_outcome_posts(standin)) == 1


# --- quorum -------------------------------------------------------------------------------


def test_without_quorum_the_deadline_is_extended_once_by_half_and_non_voters_reminded_once(
    services, standin, plan
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)  # 1 of the 2 needed

    standin.reset_calls()
    report = close_due_polls(services, AFTER)
    assert (report.closed, report.extended, report.reminded) == (0, 1, 2)
    poll = pf.load_poll(services, poll_id)
    new_deadline = DEADLINE + timedelta(hours=24)
    assert poll.state == PollState.OPEN and poll.deadline == new_deadline
    assert poll.extended_at == AFTER and poll.original_deadline == DEADLINE
    assert pf.decisions(services) == []

    # Each non-voter got one DM with a link to the poll and the new deadline; the voter none.
    token = f"<!date^{int(new_deadline.timestamp())}^"
    for leader in ("UCIO", "UCOO"):
        [dm] = _dms(standin, leader)
        text = str(dm.params.get("blocks"))
        assert token in text and "Open the poll" in text and "http" in text
    assert _dms(standin, "UCFO") == []
    with Session(services.engine) as session:
        rows = session.exec(select(PollReminder)).all()
        assert sorted(r.person_id for r in rows) == sorted(
            [plan.leaders["UCIO"], plan.leaders["UCOO"]]
        )
        assert all(r.sent_at == AFTER for r in rows)
    # The parent shows the new deadline, and still has its buttons.
    parent = _parent(standin, poll)
    assert token in str(parent.blocks) and _has_buttons(parent)

    standin.reset_calls()
    later = close_due_polls(services, AFTER + timedelta(hours=1))
    assert (later.extended, later.reminded) == (0, 0)
    assert standin.calls() == []


def test_still_without_quorum_at_the_extended_deadline_it_closes_undecided_naming_non_voters(
    services, standin, plan
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    close_due_polls(services, AFTER)  # extended by 24 hours
    assert close_due_polls(services, AFTER + timedelta(hours=23)).closed == 0

    final = DEADLINE + timedelta(hours=24, minutes=1)
    report = close_due_polls(services, final)
    assert report.closed == 1
    poll = pf.load_poll(services, poll_id)
    assert poll.outcome == "undecided"
    [decision] = pf.decisions(services)
    assert decision.option == "undecided" and decision.new_due is None
    assert decision.votes["reason"] == "no_quorum"
    [reply] = _replies(standin, poll_id)
    assert reply.broadcast and reply.text.startswith("No decision")
    body = str(reply.blocks)
    assert "too few leaders voted (1 of the 2 needed), even after the deadline was extended" in body
    assert "Did not vote: <@UCIO>, <@UCOO>" in body
    assert not _has_buttons(_parent(standin, poll))


def test_the_plan_s_quorum_setting_replaces_the_majority(services, standin) -> None:
    plan = pf.poll_plan(services, quorum=1)
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCIO"], "add_resources", at=OPENED)
    assert close_due_polls(services, AFTER).closed == 1
    assert pf.load_poll(services, poll_id).outcome == "add_resources"
    assert pf.decisions(services)[0].votes["quorum"] == 1


def test_a_former_leader_s_vote_stays_shown_but_counts_neither_for_quorum_nor_the_result(
    services, standin, plan
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCIO"], "descope", at=OPENED)
    pf.set_person(services, plan.leaders["UCIO"], is_leader=False)  # removed from the plan

    # Two leaders remain, a majority is 2, and only the CFO's vote counts: extended, not closed.
    report = close_due_polls(services, AFTER)
    assert (report.closed, report.extended) == (0, 1)
    assert [c.params["channel"] for c in _dms(standin, "UCOO")] == ["UCOO"]
    assert _dms(standin, "UCIO") == []  # a former leader is not reminded
    parent = _parent(standin, pf.load_poll(services, poll_id))
    assert "<@UCIO> (former leader)" in str(parent.blocks)

    # Both remaining leaders vote delay; the former leader's descope is shown, not counted.
    pf.vote(services, poll_id, plan.leaders["UCOO"], "delay", at=AFTER)
    assert close_due_polls(services, AFTER + timedelta(minutes=1)).closed == 1  # all voted
    poll = pf.load_poll(services, poll_id)
    assert poll.outcome == "delay"
    [decision] = pf.decisions(services)
    assert decision.votes["counts"] == {
        "delay": 2,
        "descope": 0,
        "add_resources": 0,
        "accept_risk": 0,
    }
    former = [v for v in decision.votes["voters"] if v["former_leader"]]
    assert former == [
        {"slack_id": "UCIO", "name": "CIO", "option": "descope", "former_leader": True}
    ]
    [reply] = _replies(standin, poll_id)
    assert "Former leaders, shown but not counted: <@UCIO> (Cut scope)" in str(reply.blocks)


# --- ties ---------------------------------------------------------------------------------


def test_a_tie_goes_to_the_objective_owner_s_vote(services, standin, plan) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCOO"], "descope", at=OPENED)  # owns the objective
    close_due_polls(services, AFTER)
    assert pf.load_poll(services, poll_id).outcome == "descope"
    [decision] = pf.decisions(services)
    assert decision.votes["tie_broken_by"] == "UCOO"
    [reply] = _replies(standin, poll_id)
    assert "the objective owner <@UCOO> voted for this option" in str(reply.blocks)


def test_a_tie_without_the_objective_owner_s_vote_is_undecided(services, standin, plan) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCIO"], "descope", at=OPENED)
    close_due_polls(services, AFTER)
    assert pf.load_poll(services, poll_id).outcome == "undecided"
    assert pf.decisions(services)[0].votes["reason"] == "tie"
    [reply] = _replies(standin, poll_id)
    assert reply.broadcast
    assert "the vote was tied, and the objective owner's vote did not break it" in str(reply.blocks)
    assert "Did not vote: <@UCOO>" in str(reply.blocks)


def test_an_owner_who_is_no_longer_a_leader_does_not_break_a_tie(services, standin, plan) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCIO"], "descope", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCOO"], "descope", at=OPENED)
    pf.set_person(services, plan.leaders["UCOO"], active=False)  # deactivated in Slack
    close_due_polls(services, AFTER)
    assert pf.load_poll(services, poll_id).outcome == "undecided"


def test_an_anonymous_poll_is_won_on_its_ballots_and_its_tie_is_undecided(
    services, standin, plan
) -> None:
    won = pf.open_poll(services, plan, opened_at=OPENED, anonymous=True)
    pf.vote(services, won, plan.leaders["UCFO"], "accept_risk", at=OPENED)
    pf.vote(services, won, plan.leaders["UCIO"], "accept_risk", at=OPENED)
    close_due_polls(services, AFTER)
    assert pf.load_poll(services, won).outcome == "accept_risk"
    [reply] = _replies(standin, won)
    body = str(reply.blocks)
    assert "Votes (anonymous)" in body and "Accept the risk — 2" in body
    assert "Voted: <@UCFO>, <@UCIO>" in body
    assert all(v["option"] is None for v in pf.decisions(services)[0].votes["voters"])

    tied = pf.open_poll(services, plan, opened_at=OPENED, anonymous=True)
    pf.vote(services, tied, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, tied, plan.leaders["UCOO"], "descope", at=OPENED)  # the owner, unknown
    close_due_polls(services, AFTER)
    assert pf.load_poll(services, tied).outcome == "undecided"
    [reply] = _replies(standin, tied)
    assert "in an anonymous poll nobody's vote can break a tie" in str(reply.blocks)


# --- withdrawn ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"archived": True}, "archived"),
        ({"status": MilestoneStatus.DONE}, "marked done"),
        ({"status": MilestoneStatus.DESCOPED}, "descoped"),
    ],
)
def test_a_poll_whose_milestone_left_the_plan_is_withdrawn_at_the_next_tick(
    services, standin, plan, change, reason
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.set_milestone(services, plan.milestone_id, **change)

    report = close_due_polls(services, BEFORE)  # before its deadline
    assert report.closed == 1
    poll = pf.load_poll(services, poll_id)
    assert poll.outcome == "withdrawn" and poll.open_key is None
    [decision] = pf.decisions(services)
    assert decision.option == "withdrawn" and decision.new_due is None
    [reply] = _replies(standin, poll_id)
    assert not reply.broadcast  # nothing was decided: the channel is not told
    assert f"was {reason} while this poll was open" in str(reply.blocks)
    parent = _parent(standin, poll)
    assert not _has_buttons(parent) and "Withdrawn" in str(parent.blocks)
    assert close_due_polls(services, AFTER).closed == 0


# --- Slack failures and crashes -----------------------------------------------------------


@pytest.mark.parametrize(("status", "times"), [(429, 4), (503, 3)])
def test_a_refused_outcome_post_is_posted_by_the_next_tick_exactly_once(
    services, standin, plan, status, times
) -> None:
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCIO"], "delay", at=OPENED)
    # More failures than the gateway's own retries: the post fails for this tick.
    standin.fail_next("chat.postMessage", status=status, retry_after=0, times=times)

    first = close_due_polls(services, AFTER)
    assert (first.closed, first.outcomes_posted, first.outcomes_unposted) == (1, 0, 1)
    poll = pf.load_poll(services, poll_id)
    assert poll.state == PollState.CLOSED and poll.outcome_posted_at is None
    assert poll.outcome_claimed_at is None  # given back to the next tick
    assert _replies(standin, poll_id) == []
    assert not _has_buttons(_parent(standin, poll))  # the parent was redrawn all the same

    second = close_due_polls(services, AFTER + timedelta(minutes=1))
    assert (second.closed, second.outcomes_posted) == (0, 1)
    third = close_due_polls(services, AFTER + timedelta(minutes=2))
    assert third.outcomes_posted == 0
    assert len(_replies(standin, poll_id)) == 1
    assert len(pf.decisions(services)) == 1


def _closed_with_a_lapsed_claim(services, plan) -> int:
    """A poll closed by a process that claimed its outcome post and died."""
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCIO"], "delay", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCOO"], "delay", at=OPENED)
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        poll.outcome_claimed_at = AFTER + timedelta(days=1)  # far in the future: nobody else posts
        session.add(poll)
        session.commit()
    assert close_due_polls(services, AFTER).outcomes_posted == 0  # closed, the claim is held
    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        poll.outcome_claimed_at = AFTER - CLAIM_LEASE - timedelta(minutes=1)  # lapsed
        session.add(poll)
        session.commit()
    return poll_id


def test_a_lapsed_claim_whose_outcome_is_in_the_thread_is_not_posted_again(
    services, standin, plan
) -> None:
    poll_id = _closed_with_a_lapsed_claim(services, plan)
    poll = pf.load_poll(services, poll_id)
    # The dead process had posted it: the tagged reply is in the thread.
    services.slack.post_message(
        channel=DECISIONS,
        text="Decided",
        thread_ts=poll.message_ts,
        broadcast=True,
        tag=MessageTag(MessageEvents.POLL_OUTCOME, {"poll_id": poll_id}),
    )
    standin.reset_calls()
    report = close_due_polls(services, AFTER)
    assert report.outcomes_posted == 0
    assert len(standin.calls("conversations.replies")) == 1
    assert _outcome_posts(standin) == []
    assert pf.load_poll(services, poll_id).outcome_posted_at == AFTER


def test_a_lapsed_claim_whose_outcome_is_not_in_the_thread_is_posted(
    services, standin, plan
) -> None:
    poll_id = _closed_with_a_lapsed_claim(services, plan)
    report = close_due_polls(services, AFTER)
    assert report.outcomes_posted == 1
    assert len(_replies(standin, poll_id)) == 1


def test_two_closers_at_once_apply_one_outcome_once(services, standin, plan) -> None:
    """Two ticks in threads, each with its own connection (on PostgreSQL: real row locks)."""
    poll_id = pf.open_poll(services, plan, opened_at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCFO"], "descope", at=OPENED)
    pf.vote(services, poll_id, plan.leaders["UCOO"], "descope", at=OPENED)
    start = threading.Barrier(2)
    reports: list = []
    errors: list[BaseException] = []

    def tick() -> None:
        try:
            start.wait(5)
            reports.append(close_due_polls(services, AFTER))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(r.closed for r in reports) == [0, 1]
    assert sum(r.outcomes_posted for r in reports) == 1
    assert [d.option for d in pf.decisions(services)] == ["descope"]
    assert len(_replies(standin, poll_id)) == 1


def test_plan_text_in_the_outcome_and_the_reminders_never_pings(services, standin) -> None:
    plan = pf.poll_plan(services, title=pf.HOSTILE)
    poll_id = pf.open_poll(services, plan, opened_at=OPENED, title=pf.HOSTILE)
    close_due_polls(services, AFTER)  # no vote: extended, everyone reminded
    close_due_polls(services, AFTER + timedelta(days=1))  # undecided
    sent = [*_dms(standin, "UCFO"), *_outcome_posts(standin)]
    assert len(sent) == 2
    for call in sent:
        check_blocks(call.params["blocks"])
        assert "<!channel>" not in str(call.params) and "<@U999>" not in str(call.params)
    assert pf.load_poll(services, poll_id).outcome == "undecided"
