"""The whole loop against the stand-in: the real delivery sends one DM, the owner answers from it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from sqlmodel import Session, select

from bot.pulses.delivery import deliver_pulses
from storage.db import session_scope
from storage.models import PulseAnswer, PulseRequest
from templates.ids import PulseIds
from tests import factories


def test_delivered_prompt_is_answered_and_edited_in_place(bot, standin):
    with session_scope(bot.services.engine) as session:
        # A daily cadence: whenever the test runs, today's period has started and is still open.
        factories.plan_settings(session, default_pulse="0 0 * * *")
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        team = factories.team(session, channel_id="CDELIVERY")
        portal = factories.initiative(session, owner=alice, team=team, title="Portal beta")
        factories.initiative(session, owner=alice, team=team, title="CRM cleanup")
    # Whatever the hour the test runs, today's prompt counts as on time (no late-prompt rule).
    always_on_time = replace(
        bot.services,
        settings=bot.services.settings.model_copy(update={"pulse_grace_minutes": 24 * 60}),
    )
    report = deliver_pulses(always_on_time, datetime.now(UTC))
    assert report.claimed == 2
    [prompt] = standin.messages("UALICE")  # one DM for both initiatives
    with Session(bot.services.engine) as session:
        pulse = session.exec(
            select(PulseRequest).where(PulseRequest.initiative_id == portal.id)
        ).one()
    assert (pulse.channel_id, pulse.message_ts) == (prompt.channel, prompt.ts)

    [button] = [
        element
        for block in prompt.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == PulseIds.OFF_TRACK and element["value"] == str(pulse.id)
    ]
    standin.reset_calls()
    bot.action(
        bot.block_action_payload(
            button["action_id"],
            button["value"],
            user_id="UALICE",
            channel_id="UALICE",
            message=prompt.as_dict(with_metadata=True),
        )
    )
    [update] = standin.wait_for("chat.update")
    bot.wait_idle()
    with Session(bot.services.engine) as session:
        [answer] = session.exec(select(PulseAnswer)).all()
    assert (answer.pulse_request_id, answer.status) == (pulse.id, "off_track")
    assert update.params["ts"] == prompt.ts
    [edited] = standin.messages("UALICE")
    values = {
        element["value"]
        for block in edited.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }
    assert (
        str(pulse.id) not in values and len(values) == 1
    )  # the other initiative keeps its buttons
    assert "Off track" in json.dumps(edited.blocks)
