"""A slash command's text with control characters in it is read as if they were not there.

Found by tests/test_fuzz_interactions.py on PostgreSQL: `/kpi` with a NUL in its text reached
the KPI lookup, PostgreSQL refused the parameter ("cannot contain NUL"), and the person was
told something went wrong while the log got a traceback.
"""

from __future__ import annotations

import logging

import pytest

from handlers.payload import command_words
from tests.test_pulse_answer_slack import post_prompt


def test_command_words_drop_what_nobody_types():
    assert command_words({"text": " mine\x00  deps\x7f\tnow "}) == ["mine", "deps", "now"]
    assert command_words({"text": None}) == []
    assert command_words({}) == []


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("/kpi", "\x00"),
        ("/kpi", "portal\x00"),
        ("/plan", "a\x00b"),
        ("/decide", "\x00"),
        ("/pulse", "away \x002027-01-01 2027-01-02"),
    ],
)
def test_a_nul_in_a_command_is_answered_like_any_text(
    bot, services, standin, caplog, command, text
):
    post_prompt(services, standin)
    response = bot.command(command, text, user_id="UALICE", channel_id="CDELIVERY")
    assert response.status_code == 200
    bot.wait_idle()
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []
    assert "went wrong" not in response.text
    assert all("went wrong" not in str(c.params) for c in standin.calls("response_url"))
