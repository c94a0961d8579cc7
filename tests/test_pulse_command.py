"""`/pulse`, `/pulse away <from> <to>`, `/pulse back` and help, through signed slash commands."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block
from sqlmodel import Session, select

from bot.pulses.answers import ListedPulse, MyPulses
from storage.db import session_scope
from storage.models import AuditEntry, Person, PulseAnswer, PulseState
from templates import render_json
from templates.ids import PulseIds
from tests import factories
from tests.test_pulse_answer_core import make_pulse


def real_now() -> datetime:
    return datetime.now(UTC)


def valid_message(message: dict) -> dict:
    """A message payload within Block Kit limits, checked with slack_sdk's models."""
    assert message["text"] and len(message["text"]) <= 4000
    assert len(message["blocks"]) <= 50
    for block in message["blocks"]:
        Block.parse(block).validate_json()
    return message


@pytest.fixture
def plan(services):
    now = real_now()
    with session_scope(services.engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        bob = factories.person(session, slack_id="UBOB", tz="America/Los_Angeles")
        team = factories.team(session, channel_id="CDELIVERY")
        open_one = factories.initiative(
            session, owner=alice, team=team, title="Portal beta", key="portal-beta"
        )
        answered = factories.initiative(session, owner=alice, team=team, key="answered")
        closed = factories.initiative(session, owner=alice, team=team, key="closed")
        unsent = factories.initiative(session, owner=alice, team=team, key="unsent")
        bobs = factories.initiative(session, owner=bob, team=team, key="bobs")
        week = {"due_at": now - timedelta(hours=3), "next_due_at": now + timedelta(days=6)}
        pending = make_pulse(session, initiative=open_one, **week)
        make_pulse(session, initiative=answered, state=PulseState.ANSWERED, **week)
        make_pulse(
            session,
            initiative=closed,
            due_at=now - timedelta(days=8),
            next_due_at=now - timedelta(days=1),
        )
        make_pulse(session, initiative=unsent, state=PulseState.CLAIMED, **week)
        make_pulse(session, initiative=bobs, **week)
        return {"pending": pending.id}


def reply_to(bot, standin, text="", *, user_id="UALICE"):
    response = bot.command("/pulse", text, user_id=user_id)
    assert response.status_code == 200
    [call] = standin.wait_for("response_url", where=lambda c: c.params.get("user") == user_id)
    bot.wait_idle()
    standin.reset_calls()
    return call.params


def person(engine, slack_id="UALICE") -> Person:
    with Session(engine) as session:
        return session.exec(select(Person).where(Person.slack_id == slack_id)).one()


def test_pulse_lists_my_pending_prompts_with_answer_buttons(bot, standin, plan):
    reply = reply_to(bot, standin)
    assert reply.get("response_type", "ephemeral") == "ephemeral"
    blocks = reply["blocks"]
    assert "Portal beta" in json.dumps(blocks)
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert {(b["action_id"], b["value"]) for b in buttons} == {
        (action, str(plan["pending"]))
        for action in (
            PulseIds.ON_TRACK,
            PulseIds.AT_RISK,
            PulseIds.OFF_TRACK,
            PulseIds.ADD_DETAILS,
        )
    }
    assert reply["text"] == "1 pulse check waits for your answer."


def test_answering_from_the_list_uses_the_same_handler_and_refreshes_the_list(bot, standin, plan):
    listed = reply_to(bot, standin)
    payload = bot.block_action_payload(
        PulseIds.ON_TRACK,
        str(plan["pending"]),
        user_id="UALICE",
        channel_id="CGENERAL",
        message={
            "type": "message",
            "ts": "1.000001",
            "text": listed["text"],
            "blocks": listed["blocks"],
        },
    )
    payload["container"]["is_ephemeral"] = True
    assert bot.action(payload).status_code == 200
    [refreshed] = standin.wait_for("response_url")
    bot.wait_idle()
    with Session(bot.services.engine) as session:
        [answer] = session.exec(
            select(PulseAnswer).where(PulseAnswer.pulse_request_id == plan["pending"])
        ).all()
    assert answer.status == "on_track"
    assert refreshed.params["replace_original"] is True
    assert "No pulse check waits" in refreshed.params["text"]


def test_an_answer_can_be_changed_from_the_list_until_the_period_ends(bot, standin, plan):
    from templates.ids import PulseDetailsIds as Details

    bot.action(
        bot.block_action_payload(
            PulseIds.ON_TRACK, str(plan["pending"]), user_id="UALICE", channel_id="CGENERAL"
        )
    )
    bot.wait_idle()
    standin.reset_calls()
    blocks = reply_to(bot, standin)["blocks"]
    assert not [b for b in blocks if b["type"] == "actions"]
    [change] = [b["accessory"] for b in blocks if "accessory" in b]
    assert (change["action_id"], change["value"]) == (PulseIds.ADD_DETAILS, str(plan["pending"]))

    bot.action(
        bot.block_action_payload(
            change["action_id"], change["value"], user_id="UALICE", channel_id="CGENERAL"
        )
    )
    [updated] = standin.wait_for("views.update")
    bot.wait_idle()
    view = standin.view(updated.params["view_id"])
    status_block = next(b for b in view["blocks"] if b.get("block_id") == Details.STATUS_BLOCK)
    assert status_block["element"]["initial_option"]["value"] == "on_track"

    values = {
        Details.STATUS_BLOCK: {
            Details.STATUS: {"type": "radio_buttons", "selected_option": {"value": "off_track"}}
        }
    }
    response = bot.view_submission(
        bot.view_submission_payload(
            Details.VIEW,
            values,
            user_id="UALICE",
            private_metadata=view["private_metadata"],
            view_id=updated.params["view_id"],
        )
    )
    assert response.status_code == 200 and "errors" not in response.text
    bot.wait_idle()
    with Session(bot.services.engine) as session:
        statuses = session.exec(select(PulseAnswer.status).order_by(PulseAnswer.id)).all()
        audited = session.exec(
            select(AuditEntry).where(AuditEntry.entity == "pulse").order_by(AuditEntry.id)
        ).all()
    assert statuses == ["on_track", "off_track"]
    assert [(a.before or {}).get("status") for a in audited] == [None, "on_track"]


def test_nothing_pending(bot, standin, plan):
    reply = reply_to(bot, standin, user_id="UCFO")  # not even in the plan
    assert "Nothing to answer" in json.dumps(reply["blocks"])


def test_away_sets_the_dates_and_is_audited(bot, standin, plan):
    start = real_now().date() + timedelta(days=3)
    end = start + timedelta(days=10)
    reply = reply_to(bot, standin, f"away {start} {end}")
    assert reply["text"] == f"You are away from {start} to {end}: no pulse checks then."
    row = person(bot.services.engine)
    assert (row.away_from, row.away_until) == (start, end)
    with Session(bot.services.engine) as session:
        [entry] = session.exec(select(AuditEntry).where(AuditEntry.entity == "person")).all()
    assert entry.actor == "slack:UALICE" and entry.after == {
        "away_from": start.isoformat(),
        "away_until": end.isoformat(),
    }

    reply = reply_to(bot, standin, "back")
    assert "Welcome back" in reply["text"]
    row = person(bot.services.engine)
    assert (row.away_from, row.away_until) == (None, None)
    reply = reply_to(bot, standin, "back")
    assert "not marked away" in reply["text"]


def test_away_may_start_in_the_past_if_it_has_not_ended(bot, standin, plan):
    today = real_now().date()
    reply_to(bot, standin, f"away {today - timedelta(days=2)} {today + timedelta(days=1)}")
    assert person(bot.services.engine).away_until == today + timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("away 2027-02-30 2027-03-05", "2027-02-30 is not a date"),
        ("away tomorrow 2027-03-05", "tomorrow is not a date"),
        ("away 2027-03-10 2027-03-05", "comes after the last day"),
        ("away 2020-03-01 2020-03-05", "already in the past"),
        ("away <!channel> 2027-03-05", "&lt;!channel&gt; is not a date"),
    ],
)
def test_bad_away_dates_are_one_sentence_and_change_nothing(bot, standin, plan, text, message):
    reply = reply_to(bot, standin, text)
    assert message in reply["text"]
    assert "<!channel>" not in reply["text"]
    row = person(bot.services.engine)
    assert (row.away_from, row.away_until) == (None, None)
    with Session(bot.services.engine) as session:
        assert session.exec(select(AuditEntry)).all() == []


def test_away_for_someone_outside_the_plan(bot, standin, plan):
    reply = reply_to(bot, standin, "away 2030-01-01 2030-01-02", user_id="UCFO")
    assert "not in the plan" in reply["text"]


@pytest.mark.parametrize("text", ["help", "away 2027-01-01", "lunch <@UBOB> & <!here>"])
def test_anything_else_gets_help(bot, standin, plan, text):
    reply = reply_to(bot, standin, text)
    shown = json.dumps(reply["blocks"])
    assert "/pulse away 2027-01-04 2027-01-15" in shown
    assert "<!here>" not in shown and "<@UBOB>" not in shown
    assert ("I did not understand" in shown) == (text != "help")


# --- every template of this module, at its limits ------------------------------------------------


def listed(n: int, *, status: str | None = None) -> list[ListedPulse]:
    now = real_now()
    return [
        ListedPulse(
            pulse_id=10_000_000 + i,
            initiative_key="k" * 100,
            initiative_title="& <!channel> " * 40,
            asked_at=now,
            closes_at=now,
            status=status,
            answered_at=now if status else None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("shown", "total", "answered"), [(0, 0, 0), (1, 1, 0), (0, 0, 5), (20, 20, 5), (20, 57, 5)]
)
def test_pending_template_within_limits(shown, total, answered):
    mine = MyPulses(
        pending=listed(shown), total_pending=total, answered=listed(answered, status="off_track")
    )
    message = valid_message(
        render_json("blocks/pulse_pending.json.j2", mine=mine, ids=PulseIds, command="/pulse")
    )
    assert ("37 more" in json.dumps(message["blocks"])) == (total == 57)
    assert json.dumps(message["blocks"]).count("Change answer") == answered


def test_away_help_and_back_templates_within_limits():
    valid_message(
        render_json(
            "blocks/pulse_away.json.j2",
            start=date(2027, 1, 4),
            end=date(2027, 1, 15),
            command="/pulse",
        )
    )
    valid_message(
        render_json(
            "blocks/pulse_away_back.json.j2",
            was_away=True,
            start=date(2027, 1, 4),
            end=date(2027, 1, 15),
        )
    )
    valid_message(
        render_json("blocks/pulse_away_back.json.j2", was_away=False, start=None, end=None)
    )
    valid_message(render_json("blocks/pulse_help.json.j2", command="/pulse", unknown="&" * 3000))
