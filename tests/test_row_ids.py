"""Row ids from buttons and modals: numbers no INTEGER column can hold are refused, not queried.

Found by tests/test_fuzz_interactions.py: a pulse button whose value was 2147483648 (past
PostgreSQL's INTEGER) or 9223372036854775808 (past SQLite's), or a "Moves us" form whose
knock_on_id was as large, reached the database driver and came back as an unexpected error
(a traceback in the log, "something went wrong" for the person) instead of a refusal.
"""

from __future__ import annotations

import json
import logging

import pytest

from bot.row_ids import MAX_ROW_ID, is_row_id, row_id_in
from templates.ids import FollowThroughIds, PulseIds
from tests.slack_harness import row_counts
from tests.test_pulse_answer_slack import post_prompt

TOO_LARGE = [str(MAX_ROW_ID + 1), str(2**63), "9" * 40]


@pytest.mark.parametrize("text", ["1", " 7 ", str(MAX_ROW_ID)])
def test_ids_the_database_can_hold_are_read(text):
    assert row_id_in(text) == int(text)


@pytest.mark.parametrize("text", [None, "", "0", "-1", "+1", "1.0", "²", "٣", "\uff11", *TOO_LARGE])
def test_anything_else_is_no_id(text):
    assert row_id_in(text) is None


@pytest.mark.parametrize("value", [1, MAX_ROW_ID])
def test_json_ids(value):
    assert is_row_id(value)


@pytest.mark.parametrize("value", [True, 0, -3, MAX_ROW_ID + 1, 2**63, 1.0, "1", None])
def test_json_non_ids(value):
    assert not is_row_id(value)


def unexpected(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("value", [*TOO_LARGE, "²"])
def test_a_pulse_button_with_an_impossible_id_is_refused_politely(
    bot, services, standin, engine, caplog, value
):
    post_prompt(services, standin)
    before = row_counts(engine)
    payload = bot.block_action_payload(
        PulseIds.ON_TRACK, value, user_id="UALICE", channel_id="UALICE"
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()
    assert unexpected(caplog) == []
    [answer] = standin.calls("response_url")
    assert "could not make sense of that request" in answer.params["text"]
    assert row_counts(engine) == before


@pytest.mark.parametrize("knock_on_id", [MAX_ROW_ID + 1, 2**63])
def test_a_moves_us_form_naming_an_impossible_id_is_out_of_date(bot, engine, caplog, knock_on_id):
    payload = bot.view_submission_payload(
        FollowThroughIds.MOVES_US_VIEW,
        {},
        private_metadata=json.dumps({"knock_on_id": knock_on_id}),
        user_id="UALICE",
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    assert list(response.json()["errors"]) == [FollowThroughIds.MOVES_US_DATE_BLOCK]
    bot.wait_idle()
    assert unexpected(caplog) == []
