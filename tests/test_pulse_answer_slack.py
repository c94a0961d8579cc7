"""Answering a pulse the way Slack does it: signed button clicks and modal submissions in, Web API out."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.pulses.messages import prompt_message
from storage.db import session_scope
from storage.models import (
    AuditEntry,
    Dependency,
    KpiReading,
    Milestone,
    PulseAnswer,
    PulseRequest,
    PulseState,
)
from templates.ids import PulseDetailsIds as Details
from templates.ids import PulseIds
from tests import factories
from tests.test_pulse_answer_core import make_pulse


def real_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def prompt(services, standin):
    return post_prompt(services, standin)


def post_prompt(services, standin) -> dict[str, Any]:
    """Alice owns two initiatives; one prompt DM with both was posted, as delivery leaves it."""
    now = real_now()
    with session_scope(services.engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        factories.person(session, slack_id="UBOB", tz="America/Los_Angeles")
        team = factories.team(session, channel_id="CDELIVERY")
        objective = factories.objective(session)
        kpi = factories.kpi(session, objective=objective, name="Requests via portal", unit="%")
        portal = factories.initiative(
            session, owner=alice, team=team, title="Portal beta", kpis=[kpi]
        )
        crm = factories.initiative(session, owner=alice, team=team, title="CRM cleanup")
        ready = factories.milestone(session, initiative=portal, due=date(2027, 1, 15))
        launch = factories.milestone(session, initiative=portal, due=date(2027, 2, 1))
        marketing = factories.team(session, name="Marketing", channel_id="CMARKETING")
        training = factories.dependency(
            session, initiative=portal, provider=marketing, needed_by=date(2027, 1, 25)
        )
        pulses = [
            make_pulse(
                session,
                initiative=item,
                due_at=now - timedelta(hours=2),
                next_due_at=now + timedelta(days=6),
            )
            for item in (portal, crm)
        ]
        text, blocks = prompt_message(session, pulses, now)
    posted = services.slack.post_message(channel="UALICE", text=text, blocks=blocks)
    with session_scope(services.engine) as session:
        for pulse in pulses:
            row = session.get(PulseRequest, pulse.id)
            row.channel_id, row.message_ts = posted.channel, posted.ts
            session.add(row)
    standin.reset_calls()
    return {
        "portal": pulses[0].id,
        "crm": pulses[1].id,
        "kpi": kpi.id,
        "ready": ready.id,
        "launch": launch.id,
        "dependency": training.id,
        "channel": posted.channel,
        "ts": posted.ts,
    }


def click(bot, action_id, pulse_id, *, user_id="UALICE", channel_id="UALICE"):
    payload = bot.block_action_payload(
        action_id,
        str(pulse_id),
        user_id=user_id,
        channel_id=channel_id,
        block_id=f"{PulseIds.ACTIONS_BLOCK}:{pulse_id}",
    )
    response = bot.action(payload)
    assert response.status_code == 200
    return payload


def answers(engine) -> list[PulseAnswer]:
    with Session(engine) as session:
        return list(session.exec(select(PulseAnswer).order_by(PulseAnswer.id)))


def button_values(blocks) -> set[str]:
    return {
        element.get("value")
        for block in blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def test_one_click_records_the_answer_and_updates_the_dm_in_place(bot, standin, prompt):
    click(bot, PulseIds.AT_RISK, prompt["portal"])
    [update] = standin.wait_for("chat.update")
    bot.wait_idle()
    [answer] = answers(bot.services.engine)
    assert (answer.pulse_request_id, answer.status) == (prompt["portal"], "at_risk")
    with Session(bot.services.engine) as session:
        assert session.get(PulseRequest, prompt["portal"]).state == PulseState.ANSWERED
    assert (update.params["channel"], update.params["ts"]) == (prompt["channel"], prompt["ts"])
    [message] = standin.messages("UALICE")
    assert message.ts == prompt["ts"]  # the same message, edited: no new DM
    # The answered initiative lost its buttons; the other one still has them.
    assert button_values(message.blocks) == {str(prompt["crm"])}
    assert "At risk" in json.dumps(message.blocks)
    assert standin.calls("chat.postMessage") == []


def test_changing_the_answer_keeps_both_in_the_audit_log(bot, standin, prompt):
    click(bot, PulseIds.ON_TRACK, prompt["portal"])
    standin.wait_for("chat.update")
    bot.wait_idle()
    click(bot, PulseIds.OFF_TRACK, prompt["portal"], channel_id="UALICE")
    standin.wait_for("chat.update", count=2)
    bot.wait_idle()
    assert [a.status for a in answers(bot.services.engine)] == ["on_track", "off_track"]
    with Session(bot.services.engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.entity == "pulse")).all()
    assert [(e.before or {}).get("status") for e in entries] == [None, "on_track"]
    assert [e.after["status"] for e in entries] == ["on_track", "off_track"]


def test_double_click_gives_one_answer(bot, standin, prompt):
    for _ in range(2):
        click(bot, PulseIds.ON_TRACK, prompt["portal"])
    standin.wait_for("chat.update", count=2)
    bot.wait_idle()
    assert len(answers(bot.services.engine)) == 1


def test_someone_else_is_told_only_the_owner_can_answer(bot, standin, prompt):
    click(bot, PulseIds.ON_TRACK, prompt["portal"], user_id="UBOB")
    [reply] = standin.wait_for("response_url")
    bot.wait_idle()
    assert reply.params["user"] == "UBOB"
    assert "Only the owner of Portal beta" in reply.params["text"]
    assert reply.params.get("response_type", "ephemeral") == "ephemeral"
    assert answers(bot.services.engine) == []
    assert standin.calls("chat.update") == []


def test_answer_after_the_period_ended_is_refused(bot, standin, prompt):
    with session_scope(bot.services.engine) as session:
        pulse = session.get(PulseRequest, prompt["portal"])
        pulse.next_due_at = real_now() - timedelta(minutes=1)
        session.add(pulse)
    click(bot, PulseIds.ON_TRACK, prompt["portal"])
    [reply] = standin.wait_for("response_url")
    bot.wait_idle()
    assert "closed when its period ended" in reply.params["text"]
    assert answers(bot.services.engine) == []


# --- the details modal --------------------------------------------------------------------------


def open_details(bot, standin, prompt, *, user_id="UALICE"):
    payload = click(bot, PulseIds.ADD_DETAILS, prompt["portal"], user_id=user_id)
    [opened] = standin.wait_for("views.open")
    [updated] = standin.wait_for("views.update")
    bot.wait_idle()
    return payload, opened, updated


def test_add_details_opens_the_modal_with_the_trigger_id_then_fills_it(bot, standin, prompt):
    payload, opened, updated = open_details(bot, standin, prompt)
    assert opened.ok and opened.params["trigger_id"] == payload["trigger_id"]
    assert opened.at <= updated.at
    view_id = opened.response["view"]["id"]
    assert updated.ok and updated.params["view_id"] == view_id
    view = standin.view(view_id)
    assert view["callback_id"] == Details.VIEW
    assert json.loads(view["private_metadata"]) == {
        "pulse_id": prompt["portal"],
        "dependency_ids": [prompt["dependency"]],  # what the form lists: unticked means not late
    }
    block_ids = {block.get("block_id") for block in view["blocks"]}
    assert f"{Details.KPI_BLOCK_PREFIX}{prompt['kpi']}" in block_ids
    assert f"{Details.EXPECTED_BLOCK_PREFIX}{prompt['launch']}" in block_ids


def test_modal_opens_before_slow_work(bot, standin, prompt, monkeypatch):
    """Building the form may take longer than the trigger_id lives: the open must not wait for it."""
    import handlers.actions.pulse as listener

    real = listener.details_view

    def slow_details_view(*args, **kwargs):
        time.sleep(3.5)  # longer than a trigger_id lives
        return real(*args, **kwargs)

    monkeypatch.setattr(listener, "details_view", slow_details_view)
    click(bot, PulseIds.ADD_DETAILS, prompt["portal"])
    [opened] = standin.wait_for("views.open")
    [updated] = standin.wait_for("views.update", timeout=10)
    bot.wait_idle()
    assert opened.ok, opened.error
    assert updated.ok and updated.at - opened.at >= 3.5


def test_add_details_by_someone_else_shows_why_not(bot, standin, prompt):
    _payload, _opened, updated = open_details(bot, standin, prompt, user_id="UBOB")
    view = updated.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert "submit" not in view
    assert "Only the owner of Portal beta" in json.dumps(view)


def submit(bot, prompt, values, *, user_id="UALICE", pulse="portal"):
    payload = bot.view_submission_payload(
        Details.VIEW,
        values,
        user_id=user_id,
        private_metadata=json.dumps(
            {"pulse_id": prompt[pulse], "dependency_ids": [prompt["dependency"]]}
        ),
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    return response


def values(
    prompt, *, status="on_track", kpi=None, expected=None, done=(), blockers=None, late=False
):
    return {
        Details.STATUS_BLOCK: {
            Details.STATUS: {"type": "radio_buttons", "selected_option": {"value": status}}
        },
        Details.CONFIDENCE_BLOCK: {
            Details.CONFIDENCE: {"type": "static_select", "selected_option": {"value": "3"}}
        },
        f"{Details.KPI_BLOCK_PREFIX}{prompt['kpi']}": {
            Details.KPI: {"type": "number_input", "value": kpi}
        },
        Details.DONE_BLOCK: {
            Details.DONE: {
                "type": "multi_static_select",
                "selected_options": [{"value": str(prompt[d])} for d in done],
            }
        },
        f"{Details.EXPECTED_BLOCK_PREFIX}{prompt['launch']}": {
            Details.EXPECTED: {"type": "datepicker", "selected_date": expected}
        },
        Details.BLOCKERS_BLOCK: {Details.BLOCKERS: {"type": "plain_text_input", "value": blockers}},
        Details.DEPENDENCY_LATE_BLOCK: {
            Details.DEPENDENCY_LATE: {
                "type": "checkboxes",
                "selected_options": [{"value": str(prompt["dependency"])}] if late else [],
            }
        },
    }


@pytest.mark.parametrize(
    ("fields", "block"),
    [
        ({"kpi": "abc"}, "kpi"),
        ({"kpi": "1e999"}, "kpi"),
        ({"expected": "2026-01-05"}, "expected"),
    ],
)
def test_invalid_details_are_field_errors_and_nothing_is_saved(bot, standin, prompt, fields, block):
    block_id = {
        "kpi": f"{Details.KPI_BLOCK_PREFIX}{prompt['kpi']}",
        "expected": f"{Details.EXPECTED_BLOCK_PREFIX}{prompt['launch']}",
    }[block]
    response = submit(bot, prompt, values(prompt, status="at_risk", **fields))
    bot.wait_idle()
    body = response.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [block_id]
    assert answers(bot.services.engine) == []
    with Session(bot.services.engine) as session:
        assert session.exec(select(KpiReading)).all() == []
    assert standin.calls("chat.update") == []


def test_valid_details_are_recorded_and_the_modal_closes(bot, standin, prompt):
    expected = (real_now() + timedelta(days=30)).date()
    response = submit(
        bot,
        prompt,
        values(
            prompt,
            status="at_risk",
            kpi="17.5",
            expected=expected.isoformat(),
            done=["ready"],
            blockers="Waiting on <!channel> legal",
            late=True,
        ),
    )
    assert response.text in ("", "{}") or response.json().get("response_action") in (None, "clear")
    [update] = standin.wait_for("chat.update")
    bot.wait_idle()
    [answer] = answers(bot.services.engine)
    assert (answer.status, answer.confidence, answer.dependency_late) == ("at_risk", 3, True)
    assert answer.blockers == "Waiting on <!channel> legal"
    with Session(bot.services.engine) as session:
        [reading] = session.exec(select(KpiReading)).all()
        ready = session.get(Milestone, prompt["ready"])
        launch = session.get(Milestone, prompt["launch"])
        training = session.get(Dependency, prompt["dependency"])
    assert (reading.kpi_id, reading.value, reading.source) == (prompt["kpi"], 17.5, "pulse")
    assert ready.status == "done" and ready.completed_at is not None
    assert launch.expected_due == expected
    # The late dependency is at risk, through the same rule as the provider's buttons.
    assert (training.state, training.note) == ("at_risk", "Waiting on <!channel> legal")
    assert update.params["ts"] == prompt["ts"]
    assert button_values(standin.messages("UALICE")[0].blocks) == {str(prompt["crm"])}


def test_details_from_someone_else_are_refused(bot, standin, prompt):
    response = submit(bot, prompt, values(prompt), user_id="UBOB")
    bot.wait_idle()
    body = response.json()
    assert body["response_action"] == "errors"
    assert "Only the owner" in next(iter(body["errors"].values()))
    assert answers(bot.services.engine) == []


def test_answer_is_kept_when_slack_refuses_the_dm_update(bot, standin, prompt):
    standin.fail_next("chat.update", status=200, error="message_not_found")
    click(bot, PulseIds.ON_TRACK, prompt["portal"])
    [failed] = standin.wait_for("chat.update")
    bot.wait_idle()
    assert not failed.ok
    [answer] = answers(bot.services.engine)
    assert answer.status == "on_track"
    assert standin.calls("response_url") == []  # nothing to apologise for: the answer counts


def test_add_details_after_the_period_ended_says_so(bot, standin, prompt):
    with session_scope(bot.services.engine) as session:
        pulse = session.get(PulseRequest, prompt["portal"])
        pulse.next_due_at = real_now() - timedelta(minutes=1)
        session.add(pulse)
    _payload, opened, updated = open_details(bot, standin, prompt)
    assert opened.ok
    view = standin.view(updated.params["view_id"])
    assert "submit" not in view
    assert "closed when its period ended" in json.dumps(view)


def test_a_quick_button_after_details_changes_only_the_status(bot, standin, prompt):
    """A stale button (the /pulse list, Home, an old DM) pressed after the details were given."""
    submit(
        bot,
        prompt,
        values(prompt, status="on_track", kpi="17.5", blockers="Vendor contract", late=True),
    )
    standin.wait_for("chat.update")
    bot.wait_idle()
    click(bot, PulseIds.AT_RISK, prompt["portal"])
    standin.wait_for("chat.update", count=2)
    bot.wait_idle()
    detailed, quick = answers(bot.services.engine)
    assert (quick.status, quick.confidence, quick.blockers, quick.dependency_late) == (
        "at_risk",
        detailed.confidence,
        "Vendor contract",
        True,
    )
    assert detailed.confidence == 3
    with Session(bot.services.engine) as session:
        [reading] = session.exec(select(KpiReading)).all()  # kept, not repeated
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.entity == "pulse").order_by(AuditEntry.id)
        ).all()
    assert reading.value == 17.5
    assert (entries[-1].before, entries[-1].after) == (
        {"status": "on_track"},
        {"status": "at_risk"},
    )
    shown = json.dumps(standin.messages("UALICE")[0].blocks)
    assert "At risk" in shown and "confidence 3/5" in shown
