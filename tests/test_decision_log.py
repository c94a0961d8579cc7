"""The decision log: `/plan decisions` with votes, the thread's permalink and the slip-to-decision time; the plan file's `decisions:`."""

from __future__ import annotations

import re

from sqlmodel import Session

from storage.models import DecisionOption, PollOutcome
from tests.decision_support import decide, slip_plan
from tests.query_fixtures import all_text, ask_command


def test_plan_decisions_shows_votes_the_thread_and_the_time_to_decide(bot, standin, services):
    parent = services.slack.post_message(channel="CDECISIONS", text="Decision needed")
    with Session(services.engine) as session:
        plan = slip_plan(session)
        decide(session, plan.milestone, DecisionOption.DELAY, message_ts=parent.ts)
        session.commit()
    message = ask_command(bot, "/plan", "decisions", "UALICE")
    text = all_text(message)
    assert "1 decision" in text
    assert "Beta &lt;!channel&gt; &amp; &lt;@UBOB&gt;" in text
    assert "delay, new due date" in text and "|2027-01-29>" in text
    assert "Votes: delay 2 (<@UCOO>, <@UCFO>) · cut scope 1 (<@UCIO>)" in text
    assert "Decided 4 days 6 hours after the slip was seen" in text
    [permalink] = standin.calls("chat.getPermalink")
    assert permalink.params["message_ts"] == parent.ts
    assert "|thread>" in text
    # Nobody is pinged by plan text: every mention is a voter's.
    assert "<!channel>" not in text and "<!here>" not in text
    assert set(re.findall(r"<@(U[A-Z0-9]+)>", text)) == {"UCIO", "UCOO", "UCFO"}


def test_plan_decisions_words_undecided_and_hides_names_of_an_anonymous_poll(bot, services):
    with Session(services.engine) as session:
        plan = slip_plan(session)
        decision = decide(session, plan.milestone, PollOutcome.UNDECIDED, channel_id=None)
        decision.votes = {**decision.votes, "anonymous": True}
        session.add(decision)
        session.commit()
    text = all_text(ask_command(bot, "/plan", "decisions", "UALICE"))
    assert "undecided (no quorum, or a tie nobody could break)" in text
    assert "Votes: delay 2 · cut scope 1 (anonymous)" in text
    assert "<@UCOO>" not in text and "|thread>" not in text
