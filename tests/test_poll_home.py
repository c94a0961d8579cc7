"""App Home lists a leader's open polls with the poll's own vote buttons; a vote there counts like one in the channel."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from templates.ids import PollIds
from tests.poll_support import click_vote, open_poll, parent_message, votes_of, voting_plan
from tests.query_fixtures import HOSTILE, all_text, assert_pings_nobody, check_home


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return voting_plan(session, title=HOSTILE)


def home_of(bot, user):
    assert bot.app_home_opened(user).status_code == 200
    bot.wait_idle()
    view = bot.standin.home(user)
    assert view is not None
    check_home(view)
    assert_pings_nobody(view)
    return view


def vote_blocks(view):
    return [b for b in view["blocks"] if b.get("block_id", "").startswith(f"{PollIds.VOTE_BLOCK}:")]


def test_a_leader_sees_each_open_poll_with_its_vote_buttons(bot, plan, services):
    poll_id = open_poll(services, plan["launch"])
    view = home_of(bot, "UCIO")
    text = all_text(view)
    assert "Decision polls open to your vote (1)" in text
    assert "*Beta launch* `beta-launch`" in text and "slipped 3 days" in text
    assert "your vote is awaited" in text
    [buttons] = vote_blocks(view)
    assert buttons["block_id"] == f"{PollIds.VOTE_BLOCK}:{poll_id}"
    assert [e["value"] for e in buttons["elements"]] == [
        f"{poll_id}:delay",
        f"{poll_id}:descope",
        f"{poll_id}:add_resources",
        f"{poll_id}:accept_risk",
    ]
    assert [e["action_id"] for e in buttons["elements"]] == [
        f"{PollIds.VOTE}:{o}" for o in ("delay", "descope", "add_resources", "accept_risk")
    ]


@pytest.mark.parametrize("user", ["UALICE", "UBOB"])
def test_someone_not_a_leader_sees_no_poll_and_no_button(bot, plan, services, user):
    open_poll(services, plan["launch"])
    view = home_of(bot, user)
    assert "Decision polls" not in all_text(view)
    assert vote_blocks(view) == []


def test_a_vote_from_home_counts_and_home_shows_it(bot, plan, services):
    poll_id = open_poll(services, plan["launch"])
    home_of(bot, "UCFO")
    click_vote(bot, poll_id, "delay", user="UCFO", home=True)
    [vote] = votes_of(services, poll_id)
    assert vote.option == "delay"
    message = parent_message(bot.standin, services, poll_id)
    assert "Delay to 27 Feb — 1: <@UCFO>" in all_text(message.blocks)
    view = bot.standin.home("UCFO")  # republished after the vote, without being opened
    assert view is not None
    check_home(view)
    assert "your vote: *Delay to 27 Feb*" in all_text(view)
    [buttons] = vote_blocks(view)
    assert [e.get("style") for e in buttons["elements"]] == ["primary", None, None, None]
    assert len(bot.standin.calls("views.publish")) == 2
    # Changing it from Home works the same way.
    click_vote(bot, poll_id, "accept_risk", user="UCFO", home=True)
    assert [v.option for v in votes_of(services, poll_id)] == ["accept_risk"]
    assert "your vote: *Accept the risk*" in all_text(bot.standin.home("UCFO"))


def test_a_tampered_home_button_is_refused(bot, plan, services):
    poll_id = open_poll(services, plan["launch"])
    other = open_poll(services, plan["ready"])
    click_vote(bot, poll_id, "delay", user="UCIO", home=True, value=f"{other}:delay")
    assert votes_of(services, poll_id) == [] and votes_of(services, other) == []
    # Home has no response_url: the refusal arrives as a DM.
    [dm] = bot.standin.messages("UCIO")
    assert "does not belong to a decision poll" in dm.text
