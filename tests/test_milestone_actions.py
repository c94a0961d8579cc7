"""A milestone's buttons the way Slack drives them: signed clicks and modal submissions in, Web API out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.milestones.buttons import actions_block
from bot.milestones.rules import SCOPE_CUT_MAX
from standin.validation import check_blocks, check_view
from storage.db import session_scope
from storage.models import AuditEntry, Milestone, MilestoneStatus
from templates import _BLOCKS
from templates.ids import MilestoneIds as Ids
from tests import factories
from tests.slack_harness import row_counts

# Plan text that would ping or break mrkdwn if it were not escaped.
TITLE = "Beta <!channel> & <@UBOB> ready"
INITIATIVE = "Portal & <!here>"
NOT_ALLOWED = "Only the owner of Portal &amp; &lt;!here&gt;, its team lead or an admin"
PEOPLE = {"owner": "UALICE", "lead": "UCIO", "admin": "UCOO"}


def plan_today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).date()


@pytest.fixture
def plan(services, standin) -> dict[str, Any]:
    """Alice owns the initiative, Chiyo leads its team, Dana is an admin; Bob owns another one.

    The milestone's buttons were posted to #it-delivery, as the alert engine will post them.
    """
    due = plan_today() + timedelta(days=30)
    with session_scope(services.engine) as session:
        factories.plan_settings(session, timezone="America/New_York")
        alice = factories.person(session, slack_id="UALICE")
        chiyo = factories.person(session, slack_id="UCIO")
        factories.person(session, slack_id="UCOO", is_admin=True)
        bob = factories.person(session, slack_id="UBOB")
        team = factories.team(session, channel_id="CDELIVERY", lead=chiyo, members=[alice])
        marketing = factories.team(session, channel_id="CMARKETING")
        portal = factories.initiative(session, owner=alice, team=team, title=INITIATIVE)
        ready = factories.milestone(
            session, initiative=portal, due=due, key="beta-ready", title=TITLE
        )
        launch = factories.initiative(session, owner=bob, team=marketing, title="Launch")
        bobs = factories.milestone(session, initiative=launch, due=due, key="launch-ready")
        ids = {"ready": ready.id, "bobs": bobs.id, "due": due}
    services.slack.post_message(
        channel="CDELIVERY", text=f"{TITLE} is at risk", blocks=[actions_block(ids["ready"])]
    )
    standin.reset_calls()
    return ids


def click(bot, action_id: str, value: Any, *, user_id: str, channel_id: str | None = "CDELIVERY"):
    payload = bot.block_action_payload(
        action_id,
        str(value),
        user_id=user_id,
        channel_id=channel_id,
        block_id=f"{Ids.ACTIONS_BLOCK}:{value}",
        **({"view": {"id": "VHOME", "type": "home"}} if channel_id is None else {}),
    )
    assert bot.action(payload).status_code == 200
    return payload


def milestone(engine, milestone_id: int) -> Milestone:
    with Session(engine) as session:
        row = session.get(Milestone, milestone_id)
        assert row is not None
        return row


def audit_entries(engine) -> list[AuditEntry]:
    with Session(engine) as session:
        statement = select(AuditEntry).where(AuditEntry.entity == "milestone")
        return list(session.exec(statement.order_by(AuditEntry.id)))


def only_reply(standin, user: str) -> str:
    [reply] = standin.wait_for("response_url")
    assert reply.params["user"] == user
    assert reply.params.get("response_type", "ephemeral") == "ephemeral"
    return str(reply.params["text"])


# --- the template ---------------------------------------------------------------------------


def test_the_partial_renders_one_valid_actions_block_of_three_buttons():
    block = actions_block(42, title=TITLE)
    check_blocks([block])
    assert (block["type"], block["block_id"]) == ("actions", f"{Ids.ACTIONS_BLOCK}:42")
    buttons = block["elements"]
    assert [b["action_id"] for b in buttons] == [Ids.MARK_DONE, Ids.NEW_DATE, Ids.DESCOPE]
    assert {b["value"] for b in buttons} == {"42"}
    confirm = buttons[0]["confirm"]
    assert confirm["text"]["type"] == "plain_text" and TITLE in confirm["text"]["text"]
    assert "confirm" not in buttons[1] and "confirm" not in buttons[2]


def test_the_partial_is_included_among_other_blocks():
    source = (
        '[{"type": "section", "text": {"type": "mrkdwn", "text": "{{ title }}"}},'
        "{% with milestone_ids = ids, milestone_id = 7 %}"
        '{% include "blocks/milestone_actions.json.j2" %}{% endwith %}]'
    )
    blocks = json.loads(_BLOCKS.from_string(source).render(ids=Ids, title=TITLE))
    check_blocks(blocks)
    assert blocks[1]["block_id"] == f"{Ids.ACTIONS_BLOCK}:7"
    assert "this milestone" in blocks[1]["elements"][0]["confirm"]["text"]["text"].lower()


# --- Mark done ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "lead", "admin"])
def test_mark_done_by_the_owner_the_lead_or_an_admin(bot, standin, plan, who):
    person = PEOPLE[who]
    click(bot, Ids.MARK_DONE, plan["ready"], user_id=person)
    text = only_reply(standin, person)
    bot.wait_idle()
    assert text.startswith(
        ":white_check_mark: You marked *Beta &lt;!channel&gt; &amp; &lt;@UBOB&gt;"
    )
    row = milestone(bot.services.engine, plan["ready"])
    assert row.status == MilestoneStatus.DONE and row.completed_at is not None
    [entry] = audit_entries(bot.services.engine)
    assert (entry.actor, entry.action) == (f"slack:{person}", "mark_done")
    assert standin.calls("chat.update") == [] and standin.calls("chat.postMessage") == []


def test_mark_done_by_an_outsider_changes_nothing(bot, standin, plan):
    before = row_counts(bot.services.engine)
    click(bot, Ids.MARK_DONE, plan["ready"], user_id="UBOB")
    text = only_reply(standin, "UBOB")
    bot.wait_idle()
    assert NOT_ALLOWED in text and "Beta &lt;!channel&gt;" in text
    assert "<!channel>" not in text and "<!here>" not in text
    assert row_counts(bot.services.engine) == before
    assert milestone(bot.services.engine, plan["ready"]).status == MilestoneStatus.OPEN


def test_double_click_on_mark_done_counts_once(bot, standin, plan):
    click(bot, Ids.MARK_DONE, plan["ready"], user_id="UALICE")
    standin.wait_for("response_url")
    bot.wait_idle()
    click(bot, Ids.MARK_DONE, plan["ready"], user_id="UALICE")
    first, second = standin.wait_for("response_url", count=2)
    bot.wait_idle()
    assert "You marked" in first.params["text"]
    assert "was already done; nothing changed" in second.params["text"]
    assert len(audit_entries(bot.services.engine)) == 1


def test_mark_done_from_app_home_answers_by_dm(bot, standin, plan):
    click(bot, Ids.MARK_DONE, plan["ready"], user_id="UALICE", channel_id=None)
    [dm] = standin.wait_for("chat.postMessage")
    bot.wait_idle()
    assert dm.params["channel"] == "UALICE" and "You marked" in dm.params["text"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("abc", "That milestone is not in the plan"),
        ("-1", "That milestone is not in the plan"),
        ("99999", "That milestone is not in the plan"),
        ("1" * 40, "That milestone is not in the plan"),
        ("bobs", "Only the owner of Launch, its team lead or an admin"),
    ],
)
@pytest.mark.parametrize("action_id", [Ids.MARK_DONE, Ids.NEW_DATE, Ids.DESCOPE])
def test_a_tampered_button_value_gets_a_sentence_and_changes_nothing(
    bot, standin, plan, value, said, action_id
):
    before = row_counts(bot.services.engine)
    click(bot, action_id, plan.get(value, value), user_id="UALICE")
    text = only_reply(standin, "UALICE")
    bot.wait_idle()
    assert said in text
    assert row_counts(bot.services.engine) == before
    assert standin.calls("views.open") == []
    assert milestone(bot.services.engine, plan["bobs"]).status == MilestoneStatus.OPEN


# --- opening New date and Descope -----------------------------------------------------------


def open_form(bot, standin, action_id: str, plan, *, user_id: str = "UALICE", **kwargs):
    payload = click(bot, action_id, plan["ready"], user_id=user_id, **kwargs)
    [opened] = standin.wait_for("views.open")
    bot.wait_idle()
    assert opened.ok, opened.error
    assert opened.params["trigger_id"] == payload["trigger_id"]
    view = opened.params["view"]
    return payload, json.loads(view) if isinstance(view, str) else view


@pytest.mark.parametrize("who", ["owner", "lead", "admin"])
def test_new_date_opens_a_date_picker_at_the_current_due_date(bot, standin, plan, who):
    payload, view = open_form(bot, standin, Ids.NEW_DATE, plan, user_id=PEOPLE[who])
    check_view(view)
    assert view["callback_id"] == Ids.NEW_DATE_VIEW
    [picker] = [b for b in view["blocks"] if b.get("block_id") == Ids.NEW_DATE_BLOCK]
    assert picker["element"]["action_id"] == Ids.NEW_DATE_INPUT
    assert picker["element"]["initial_date"] == plan["due"].isoformat()
    assert f"{plan['due'].isoformat()}, is kept for slip reports" in picker["hint"]["text"]
    metadata = json.loads(view["private_metadata"])
    assert metadata["milestone_id"] == plan["ready"]
    assert metadata["url"] == payload["response_url"]


def test_the_modals_show_plan_text_literally(bot, standin, plan):
    for action_id in (Ids.NEW_DATE, Ids.DESCOPE):
        _payload, view = open_form(bot, standin, action_id, plan)
        standin.reset_calls()
        shown = view["blocks"][0]["text"]["text"]
        assert "*Beta &lt;!channel&gt; &amp; &lt;@UBOB&gt; ready*" in shown
        assert "Portal &amp; &lt;!here&gt;" in shown
        assert "<!channel>" not in json.dumps(view) and "<@UBOB>" not in json.dumps(view)


def test_the_new_date_modal_notes_the_first_planned_date(bot, standin, plan):
    with session_scope(bot.services.engine) as session:
        row = session.get(Milestone, plan["ready"])
        row.original_due = plan["due"] - timedelta(days=10)
        session.add(row)
    _payload, view = open_form(bot, standin, Ids.NEW_DATE, plan)
    assert "first planned for <!date^" in view["blocks"][0]["text"]["text"]


def test_descope_opens_a_multiline_input(bot, standin, plan):
    _payload, view = open_form(bot, standin, Ids.DESCOPE, plan, user_id="UCIO")
    check_view(view)
    assert view["callback_id"] == Ids.DESCOPE_VIEW
    [cut] = [b for b in view["blocks"] if b.get("block_id") == Ids.SCOPE_CUT_BLOCK]
    element = cut["element"]
    assert (element["action_id"], element["multiline"], element["max_length"]) == (
        Ids.SCOPE_CUT_INPUT,
        True,
        SCOPE_CUT_MAX,
    )


@pytest.mark.parametrize("action_id", [Ids.NEW_DATE, Ids.DESCOPE])
def test_an_outsider_gets_no_modal(bot, standin, plan, action_id):
    before = row_counts(bot.services.engine)
    click(bot, action_id, plan["ready"], user_id="UBOB")
    text = only_reply(standin, "UBOB")
    bot.wait_idle()
    assert NOT_ALLOWED in text
    assert standin.calls("views.open") == []
    assert row_counts(bot.services.engine) == before


@pytest.mark.parametrize("action_id", [Ids.NEW_DATE, Ids.DESCOPE])
def test_a_done_milestone_gets_no_modal(bot, standin, plan, action_id):
    with session_scope(bot.services.engine) as session:
        row = session.get(Milestone, plan["ready"])
        row.status = MilestoneStatus.DONE
        session.add(row)
    click(bot, action_id, plan["ready"], user_id="UALICE")
    text = only_reply(standin, "UALICE")
    bot.wait_idle()
    assert "is already done" in text
    assert standin.calls("views.open") == []


# --- submitting New date --------------------------------------------------------------------


def submit(bot, callback_id: str, values, *, metadata: str, user_id: str = "UALICE"):
    payload = bot.view_submission_payload(
        callback_id, values, user_id=user_id, private_metadata=metadata
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    bot.wait_idle()
    return response


def date_values(picked: str | None) -> dict[str, Any]:
    return {
        Ids.NEW_DATE_BLOCK: {Ids.NEW_DATE_INPUT: {"type": "datepicker", "selected_date": picked}}
    }


def cut_values(typed: str | None) -> dict[str, Any]:
    return {
        Ids.SCOPE_CUT_BLOCK: {Ids.SCOPE_CUT_INPUT: {"type": "plain_text_input", "value": typed}}
    }


def metadata_of(plan, *, milestone_id: int | None = None, url: str | None = None) -> str:
    return json.dumps(
        {
            "milestone_id": milestone_id or plan["ready"],
            "due": plan["due"].isoformat(),
            "url": url,
        }
    )


def field_error(response, block_id: str) -> str:
    body = response.json()
    assert body["response_action"] == "errors", body
    assert list(body["errors"]) == [block_id]
    return str(body["errors"][block_id])


def test_a_new_date_is_applied_the_modal_closes_and_the_presser_is_told(bot, standin, plan):
    _payload, view = open_form(bot, standin, Ids.NEW_DATE, plan, user_id="UCIO")
    new_due = plan["due"] + timedelta(days=14)
    response = submit(
        bot,
        Ids.NEW_DATE_VIEW,
        date_values(new_due.isoformat()),
        metadata=view["private_metadata"],
        user_id="UCIO",
    )
    assert response.text in ("", "{}")  # a plain ack closes the modal
    text = only_reply(standin, "UCIO")
    assert text.startswith(":calendar: You moved *Beta &lt;!channel&gt; &amp; &lt;@UBOB&gt; ready*")
    assert "first planned for <!date^" in text
    row = milestone(bot.services.engine, plan["ready"])
    assert (row.due, row.original_due, row.status) == (new_due, plan["due"], "open")
    [entry] = audit_entries(bot.services.engine)
    assert (entry.actor, entry.action) == ("slack:UCIO", "move_due")
    assert (entry.before["due"], entry.after["due"]) == (
        plan["due"].isoformat(),
        new_due.isoformat(),
    )


def test_a_new_date_from_app_home_is_confirmed_by_dm(bot, standin, plan):
    _payload, view = open_form(bot, standin, Ids.NEW_DATE, plan, channel_id=None)
    assert json.loads(view["private_metadata"])["url"] is None
    new_due = plan["due"] + timedelta(days=1)
    submit(
        bot, Ids.NEW_DATE_VIEW, date_values(new_due.isoformat()), metadata=view["private_metadata"]
    )
    [dm] = standin.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UALICE" and "You moved" in dm.params["text"]


@pytest.mark.parametrize(
    ("picked", "said"),
    [
        (None, "Pick the new due date."),
        ("", "Pick the new due date."),
        ("next tuesday", "That is not a date"),
        ("2027-02-30", "That is not a date"),
        ("same", "is already due on"),
        ("yesterday", "The new date is in the past; pick today"),
    ],
)
def test_a_bad_new_date_is_a_field_error_and_nothing_changes(bot, standin, plan, picked, said):
    picked = {
        "same": plan["due"].isoformat(),
        "yesterday": (plan_today() - timedelta(days=1)).isoformat(),
    }.get(picked, picked)
    before = row_counts(bot.services.engine)
    response = submit(bot, Ids.NEW_DATE_VIEW, date_values(picked), metadata=metadata_of(plan))
    assert said in field_error(response, Ids.NEW_DATE_BLOCK)
    assert row_counts(bot.services.engine) == before
    assert milestone(bot.services.engine, plan["ready"]).due == plan["due"]
    assert standin.calls("response_url") == [] and standin.calls("chat.postMessage") == []


@pytest.mark.parametrize(
    ("metadata", "said"),
    [
        ("", "This form is out of date"),
        ("not json", "This form is out of date"),
        ('{"milestone_id": "1"}', "This form is out of date"),
        ('{"milestone_id": true}', "This form is out of date"),
        ('{"milestone_id": 1, "due": "soon"}', "This form is out of date"),
        ("[1, 2]", "This form is out of date"),
        ("missing", "That milestone is not in the plan"),
        ("bobs", "Only the owner of Launch, its team lead or an admin"),
    ],
)
def test_tampered_private_metadata_is_refused(bot, standin, plan, metadata, said):
    metadata = {
        "missing": metadata_of(plan, milestone_id=99999),
        "bobs": metadata_of(plan, milestone_id=plan["bobs"]),
    }.get(metadata, metadata)
    before = row_counts(bot.services.engine)
    picked = (plan["due"] + timedelta(days=3)).isoformat()
    response = submit(bot, Ids.NEW_DATE_VIEW, date_values(picked), metadata=metadata)
    assert said in field_error(response, Ids.NEW_DATE_BLOCK)
    assert row_counts(bot.services.engine) == before


def test_an_outsiders_submission_is_refused(bot, standin, plan):
    before = row_counts(bot.services.engine)
    picked = (plan["due"] + timedelta(days=3)).isoformat()
    response = submit(
        bot, Ids.NEW_DATE_VIEW, date_values(picked), metadata=metadata_of(plan), user_id="UBOB"
    )
    assert NOT_ALLOWED in field_error(response, Ids.NEW_DATE_BLOCK)
    assert row_counts(bot.services.engine) == before


@pytest.mark.parametrize(
    ("change", "said"),
    [("archived", "is no longer in the plan (it was archived)"), ("done", "is already done")],
)
@pytest.mark.parametrize("form", ["new_date", "descope"])
def test_a_milestone_closed_while_the_modal_was_open(bot, standin, plan, change, said, form):
    action_id, callback_id, block_id, values = {
        "new_date": (
            Ids.NEW_DATE,
            Ids.NEW_DATE_VIEW,
            Ids.NEW_DATE_BLOCK,
            date_values((plan["due"] + timedelta(days=3)).isoformat()),
        ),
        "descope": (Ids.DESCOPE, Ids.DESCOPE_VIEW, Ids.SCOPE_CUT_BLOCK, cut_values("Offline mode")),
    }[form]
    _payload, view = open_form(bot, standin, action_id, plan)
    with session_scope(bot.services.engine) as session:
        row = session.get(Milestone, plan["ready"])
        if change == "archived":
            row.archived = True
        else:
            row.status = MilestoneStatus.DONE
        session.add(row)
    before = row_counts(bot.services.engine)
    response = submit(bot, callback_id, values, metadata=view["private_metadata"])
    assert said in field_error(response, block_id)
    assert row_counts(bot.services.engine) == before
    row = milestone(bot.services.engine, plan["ready"])
    assert (row.due, row.scope_note) == (plan["due"], None)


# --- submitting Descope ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        (None, "Say what is cut."),
        ("   \n ", "Say what is cut."),
        ("x" * (SCOPE_CUT_MAX + 1), f"Keep what is cut to {SCOPE_CUT_MAX} characters"),
    ],
)
def test_a_bad_scope_cut_is_a_field_error(bot, standin, plan, typed, said):
    before = row_counts(bot.services.engine)
    response = submit(bot, Ids.DESCOPE_VIEW, cut_values(typed), metadata=metadata_of(plan))
    assert said in field_error(response, Ids.SCOPE_CUT_BLOCK)
    assert row_counts(bot.services.engine) == before
    assert milestone(bot.services.engine, plan["ready"]).status == MilestoneStatus.OPEN


def test_a_scope_cut_is_recorded_and_shown_literally(bot, standin, plan):
    _payload, view = open_form(bot, standin, Ids.DESCOPE, plan, user_id="UCOO")
    typed = "Offline mode <!channel> & exports for <@UBOB>"
    response = submit(
        bot, Ids.DESCOPE_VIEW, cut_values(typed), metadata=view["private_metadata"], user_id="UCOO"
    )
    assert response.text in ("", "{}")
    text = only_reply(standin, "UCOO")
    assert "What is cut: Offline mode &lt;!channel&gt; &amp; exports for &lt;@UBOB&gt;" in text
    assert "<!channel>" not in text and "<@UBOB>" not in text
    row = milestone(bot.services.engine, plan["ready"])
    assert (row.status, row.scope_note, row.due) == ("descoped", typed, plan["due"])
    [entry] = audit_entries(bot.services.engine)
    assert (entry.actor, entry.action, entry.after["scope_note"]) == (
        "slack:UCOO",
        "descope",
        typed,
    )
