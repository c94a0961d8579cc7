""" "Share in channel": the answer is posted for everyone and the private copy goes away."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session

from tests.query_fixtures import (
    HOSTILE,
    HOSTILE_ESCAPED,
    all_text,
    assert_pings_nobody,
    build_portal_plan,
    check_message,
)


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return build_portal_plan(session, title=HOSTILE)


def press_share(bot, answer, *, user="UALICE", channel="CDELIVERY"):
    button = answer["blocks"][-1]["elements"][0]
    payload = bot.block_action_payload(
        button["action_id"],
        button["value"],
        user_id=user,
        channel_id=channel,
        block_id=answer["blocks"][-1]["block_id"],
        message={"type": "message", "ts": "1700000000.000100", "text": answer["text"]},
    )
    payload["container"]["is_ephemeral"] = True
    response = bot.action(payload)
    assert response.status_code == 200
    bot.wait_idle()


@pytest.mark.parametrize(("command", "text"), [("/plan", "portal-beta"), ("/kpi", "portal")])
def test_share_posts_the_answer_to_the_channel_and_deletes_the_ephemeral(bot, plan, command, text):
    answer = bot.command(command, text, user_id="UALICE", channel_id="CDELIVERY").json()
    press_share(bot, answer)
    [posted] = bot.standin.messages("CDELIVERY")
    shown = posted.as_dict(with_metadata=False)
    assert HOSTILE_ESCAPED in all_text(shown)
    assert "Shared by <@UALICE>" in all_text(shown)
    assert "query_share" not in all_text(shown)  # no share button on the shared copy
    check_message(shown)
    assert_pings_nobody(shown)
    [deleted] = bot.standin.calls("response_url")
    assert deleted.params["delete_original"] is True


def test_share_of_plan_mine_is_the_sharers_view(bot, plan):
    answer = bot.command("/plan", "mine", user_id="UALICE", channel_id="CDELIVERY").json()
    assert json.loads(answer["blocks"][-1]["elements"][0]["value"]) == {
        "command": "plan",
        "text": "mine",
    }
    press_share(bot, answer)
    [posted] = bot.standin.messages("CDELIVERY")
    assert "You own 1 initiative" in posted.text + all_text(posted.blocks)


def test_share_where_the_bot_is_not_a_member_explains_and_posts_nothing(bot, plan):
    answer = bot.command("/kpi", "", user_id="UALICE", channel_id="CRANDOM").json()
    press_share(bot, answer, channel="CRANDOM")
    assert bot.standin.messages("CRANDOM") == []
    [reply] = bot.standin.calls("response_url")
    assert "not in this channel" in all_text(reply.params)
    assert reply.params.get("delete_original") in (None, False)


def test_a_forged_share_value_gets_a_polite_reply(bot, plan):
    answer = bot.command("/kpi", "", user_id="UALICE", channel_id="CDELIVERY").json()
    answer["blocks"][-1]["elements"][0]["value"] = "not json"
    press_share(bot, answer)
    assert bot.standin.messages("CDELIVERY") == []
    [reply] = bot.standin.calls("response_url")
    assert reply.params["text"]
