"""Text typed into a modal is read without control characters: a NUL cannot fail the save.

Found by tests/test_fuzz_interactions.py on PostgreSQL: a Descope form whose scope cut held a
NUL passed every rule, then PostgreSQL refused the row ("cannot contain NUL"), and the person
saw "something went wrong" instead of their change (the pulse blockers box did the same).
"""

from __future__ import annotations

import json
import logging

from sqlmodel import Session, select

from handlers.payload import form_values
from storage.models import Milestone, PulseAnswer
from templates.ids import MilestoneIds, PulseDetailsIds
from tests.test_pulse_answer_slack import post_prompt


def test_form_values_drop_what_nobody_types():
    view = {"state": {"values": {"b": {"a": {"value": "x\x00y\tz", "options": [{"v": "\x1b1"}]}}}}}
    assert form_values(view) == {"b": {"a": {"value": "xy\tz", "options": [{"v": "1"}]}}}


def unexpected(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_scope_cut_with_a_nul_is_saved_without_it(bot, services, standin, engine, caplog):
    plan = post_prompt(services, standin)
    values = {
        MilestoneIds.SCOPE_CUT_BLOCK: {
            MilestoneIds.SCOPE_CUT_INPUT: {"type": "plain_text_input", "value": "Drop\x00 exports"}
        }
    }
    metadata = json.dumps({"milestone_id": plan["ready"], "due": "2027-01-15", "url": None})
    payload = bot.view_submission_payload(
        MilestoneIds.DESCOPE_VIEW, values, private_metadata=metadata, user_id="UALICE"
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200 and "went wrong" not in response.text
    bot.wait_idle()
    assert unexpected(caplog) == []
    with Session(engine) as session:
        assert session.get(Milestone, plan["ready"]).scope_note == "Drop exports"


def test_pulse_blockers_with_a_nul_are_saved_without_it(bot, services, standin, engine, caplog):
    plan = post_prompt(services, standin)
    d = PulseDetailsIds
    values = {
        d.STATUS_BLOCK: {
            d.STATUS: {"type": "static_select", "selected_option": {"value": "at_risk"}}
        },
        d.BLOCKERS_BLOCK: {d.BLOCKERS: {"type": "plain_text_input", "value": "Vendor\x00 late"}},
    }
    payload = bot.view_submission_payload(
        d.VIEW, values, private_metadata=json.dumps({"pulse_id": plan["portal"]}), user_id="UALICE"
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200 and "went wrong" not in response.text, response.text
    bot.wait_idle()
    assert unexpected(caplog) == []
    with Session(engine) as session:
        [answer] = session.exec(select(PulseAnswer)).all()
        assert answer.blockers == "Vendor late"
