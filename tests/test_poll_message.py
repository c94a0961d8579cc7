"""The poll's parent message: valid Block Kit, escaped plan text, a tally that names voters."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from bot.decisions.poll_message import poll_message
from standin.validation import check_blocks
from storage.decisions import PollVotes, Voter
from storage.models import DecisionPoll, PollState
from templates.ids import PollIds

DEADLINE = datetime(2027, 2, 3, 15, 0, tzinfo=UTC)
HOSTILE = "<!channel> & <@U999> *bold*"


def _poll(**overrides) -> DecisionPoll:
    facts = {
        "milestone_id": 7,
        "milestone_key": "beta-launch",
        "milestone_title": HOSTILE * 20,
        "initiative_key": "portal-beta",
        "initiative_title": HOSTILE,
        "owner": "UALICE",
        "original_due": "2027-01-15",
        "due": "2027-01-15",
        "slip_days": 3,
        "cause": "missed",
        "dependency": None,
        "later_milestones": [
            {"key": f"m{n}", "title": HOSTILE, "due": "2027-03-01"} for n in range(8)
        ],
        "waiting_dependencies": [
            {"key": "d", "need": HOSTILE, "team": HOSTILE, "needed_by": "2027-02-01"}
        ],
        "kpis": [{"key": f"k{n}", "name": HOSTILE} for n in range(12)],
    }
    values = {
        "id": 41,
        "milestone_id": 7,
        "state": PollState.OPEN,
        "opened_at": DEADLINE,
        "deadline": DEADLINE,
        "proposed_due": date(2027, 2, 27),
        "scope_cut": HOSTILE * 100,
        "resources": None,
        "facts": facts,
    }
    values.update(overrides)
    return DecisionPoll(**values)


ANA = Voter(person_id=1, slack_id="UANA", name="Ana", is_leader=True)
BEN = Voter(person_id=2, slack_id="UBEN", name="Ben", is_leader=True)
OLD = Voter(person_id=3, slack_id="UOLD", name="Old", is_leader=False)


def _all_text(blocks) -> str:
    """Every mrkdwn text of the message (plain_text is never parsed, so it may show plan text)."""
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


def test_the_tally_names_each_option_s_voters() -> None:
    votes = PollVotes(voters=[(ANA, "delay"), (BEN, "delay"), (OLD, "descope")])
    message = poll_message(_poll(), votes)
    check_blocks(message.blocks)
    body = _all_text(message.blocks)
    assert "Delay to 27 Feb — 2: <@UANA>, <@UBEN>" in body
    assert "Cut scope — 1: <@UOLD> (former leader)" in body
    assert "Accept the risk — 0" in body
    # Plan text never pings: the hostile text is escaped everywhere.
    assert "<!channel>" not in body
    assert "<@U999>" not in body


def test_each_button_names_its_poll_and_option() -> None:
    message = poll_message(_poll(), PollVotes(voters=[]))
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert len(actions) == 1
    assert actions[0]["block_id"] == f"{PollIds.VOTE_BLOCK}:41"
    values = [e["value"] for e in actions[0]["elements"]]
    assert values == ["41:delay", "41:descope", "41:add_resources", "41:accept_risk"]
    assert len({e["action_id"] for e in actions[0]["elements"]}) == 4


def test_an_anonymous_poll_shows_counts_and_who_voted_but_not_what() -> None:
    votes = PollVotes(voters=[(ANA, None), (BEN, None)], ballots=Counter({"descope": 2}))
    message = poll_message(_poll(anonymous=True), votes)
    check_blocks(message.blocks)
    body = _all_text(message.blocks)
    assert "Cut scope — 2\n" in body
    assert "Voted: <@UANA>, <@UBEN>" in body
    assert "not what anyone chose" in body


@pytest.mark.parametrize("outcome", ["delay", "descope", "undecided", "withdrawn"])
def test_a_closed_poll_has_no_buttons(outcome: str) -> None:
    poll = _poll(state=PollState.CLOSED, outcome=outcome, closed_at=DEADLINE)
    message = poll_message(poll, PollVotes(voters=[(ANA, "delay")]))
    check_blocks(message.blocks)
    assert not [b for b in message.blocks if b["type"] == "actions"]
    assert "Decision needed" not in message.text
