"""A poll's outcome line and its quorum reminder: valid Block Kit in every variant, plan text that never pings."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.decisions.closing import OUTCOME_TEMPLATE, REMINDER_TEMPLATE
from standin.validation import check_blocks
from storage.models import DecisionPoll, PollState
from templates import render_json_object
from tests.poll_fixtures import HOSTILE, PollPlan, facts

DEADLINE = datetime(2027, 1, 21, 15, 0, tzinfo=UTC)
PLAN = PollPlan(milestone_id=7, initiative_id=3, leaders={}, owner_id=1)


def _poll(**overrides) -> DecisionPoll:
    values = {
        "id": 41,
        "milestone_id": 7,
        "state": PollState.CLOSED,
        "opened_at": DEADLINE,
        "deadline": DEADLINE,
        "extended_at": DEADLINE,
        "channel_id": "CDECISIONS",
        "message_ts": "1.000001",
        "proposed_due": date(2027, 2, 27),
        "scope_cut": HOSTILE * 200,
        "resources": HOSTILE * 200,
        "facts": facts(PLAN, HOSTILE * 50),
    }
    values.update(overrides)
    return DecisionPoll(**values)


def _votes(*, anonymous: bool = False, reason: str | None = None, tie_broken_by=None) -> dict:
    return {
        "counts": {"delay": 2, "descope": 1, "add_resources": 0, "accept_risk": 0},
        "voters": [
            {
                "slack_id": "UCFO",
                "name": HOSTILE,
                "option": None if anonymous else "delay",
                "former_leader": False,
            },
            {
                "slack_id": "UCIO",
                "name": HOSTILE,
                "option": None if anonymous else "delay",
                "former_leader": False,
            },
            {
                "slack_id": "UOLD",
                "name": HOSTILE,
                "option": None if anonymous else "descope",
                "former_leader": True,
            },
        ],
        "non_voters": ["UCOO"],
        "quorum": 2,
        "anonymous": anonymous,
        "reason": reason,
        "tie_broken_by": tie_broken_by,
    }


def _mrkdwn(blocks) -> str:
    texts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return "\n".join(texts)


def _check(message) -> str:
    check_blocks(message["blocks"])
    body = _mrkdwn(message["blocks"]) + "\n" + message["text"]
    assert "<!channel>" not in body and "<@U999>" not in body
    return body


@pytest.mark.parametrize(
    ("outcome", "votes", "expected"),
    [
        ("delay", _votes(), "Its due date moves to <!date^"),
        ("descope", _votes(), "Scope is cut to hold the date: &lt;!channel&gt;"),
        ("add_resources", _votes(), "Resources are added to save the date"),
        ("accept_risk", _votes(tie_broken_by="UCOO"), "the objective owner <@UCOO> voted"),
        ("undecided", _votes(reason="no_quorum"), "too few leaders voted (2 of the 2 needed)"),
        ("undecided", _votes(reason="tie"), "the objective owner's vote did not break it"),
        ("undecided", _votes(reason="tie", anonymous=True), "nobody's vote can break a tie"),
        ("withdrawn", _votes(reason="archived"), "was archived while this poll was open"),
        ("withdrawn", _votes(reason="done"), "was marked done while"),
        ("withdrawn", _votes(reason="descoped"), "was descoped while"),
    ],
)
def test_every_outcome_is_valid_escaped_and_says_what_happened(outcome, votes, expected) -> None:
    poll = _poll(outcome=outcome)
    message = render_json_object(
        OUTCOME_TEMPLATE, poll=poll, f=poll.facts, outcome=outcome, v=votes
    )
    body = _check(message)
    assert expected in body
    if outcome != "withdrawn":
        assert "Did not vote: <@UCOO>" in body
        if votes["anonymous"]:
            assert "Voted: <@UCFO>, <@UCIO>, <@UOLD> (former leader)" in body
            assert "<@UCFO>," in body and "Delay to 27 Feb — 2\n" in body
        else:
            assert "Delay to 27 Feb — 2: <@UCFO>, <@UCIO>" in body
            assert "Former leaders, shown but not counted: <@UOLD> (Cut scope)" in body
    else:
        assert "Votes" not in body  # nothing was counted


def test_the_reminder_links_the_poll_and_names_the_new_deadline() -> None:
    poll = _poll(state=PollState.OPEN)
    link = "https://planpulse.slack.com/archives/CDECISIONS/p1000001"
    body = _check(render_json_object(REMINDER_TEMPLATE, poll=poll, f=poll.facts, link=link))
    assert f"<{link}|Open the poll>" in body
    assert f"<!date^{int(DEADLINE.timestamp())}^" in body
    without = _check(render_json_object(REMINDER_TEMPLATE, poll=poll, f=poll.facts, link=None))
    assert "<#CDECISIONS>" in without
