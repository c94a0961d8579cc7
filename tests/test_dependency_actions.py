"""The buttons of a dependency request, pressed the way Slack does it: who may, what changes, once."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.dependencies.requests import post_dependency_requests
from bot.dependencies.rules import REASON_MAX
from storage.models import AuditEntry, Dependency, DependencyRequest, Person
from templates.ids import CantMakeItIds as Form
from templates.ids import DependencyIds
from tests.dependency_support import (
    buttons,
    dependency,
    imported,
    real_now,
    request_messages,
    requests,
    shown_text,
)
from tests.slack_harness import row_counts

MEMBER, LEAD, ADMIN, OUTSIDER, OWNER = "UBOB", "UCMO", "UCOO", "UCIO", "UALICE"


@pytest.fixture
def posted(bot, standin, tmp_path) -> dict[str, Any]:
    """The plan imported and its requests posted, as the first tick leaves them."""
    now = real_now()
    imported(bot.services, tmp_path, now)
    post_dependency_requests(bot.services, now)
    [message] = request_messages(standin)
    standin.reset_calls()
    return {
        "id": dependency(bot.services.engine).id,
        "budget": dependency(bot.services.engine, "budget").id,
        "ts": message.ts,
    }


def press(bot, action_id: str, value: str | None, *, user: str, message=None) -> dict[str, Any]:
    payload = bot.block_action_payload(
        action_id,
        value,
        user_id=user,
        channel_id="CMARKETING",
        block_id=DependencyIds.ACTIONS_BLOCK,
        message=message,
    )
    response = bot.action(payload)
    assert response.status_code == 200 and response.text in ("", "{}")
    return payload


def the_request(standin):
    [message] = request_messages(standin)
    return message


def dms(standin, user: str = OWNER) -> list[Any]:
    return [c for c in standin.calls("chat.postMessage") if c.params.get("channel") == user]


def replies(standin) -> list[str]:
    return [str(c.params.get("text")) for c in standin.calls("response_url")]


def person_id(engine, slack_id: str) -> int:
    with Session(engine) as session:
        return session.exec(select(Person).where(Person.slack_id == slack_id)).one().id


def audit(engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.entity == "dependency", AuditEntry.action != "create")
                .order_by(AuditEntry.id)
            )
        )


@pytest.mark.parametrize("user", [MEMBER, LEAD, ADMIN])
def test_acknowledge_records_updates_in_place_and_tells_the_owner(bot, standin, posted, user):
    press(bot, DependencyIds.ACKNOWLEDGE, str(posted["id"]), user=user)
    standin.wait_for("chat.update")
    bot.wait_idle()
    stored = dependency(bot.services.engine)
    assert stored.state == "acknowledged"
    assert stored.acknowledged_by_id == person_id(bot.services.engine, user)
    assert stored.acknowledged_at is not None
    message = the_request(standin)
    assert message.ts == posted["ts"]  # the same message, edited
    assert f"Acknowledged by <@{user}>" in shown_text(message)
    assert buttons(message) == [DependencyIds.CANT_MAKE_IT, DependencyIds.DELIVERED]
    [dm] = dms(standin)
    assert "acknowledged" in dm.params["text"]
    [entry] = audit(bot.services.engine)
    assert (entry.actor, entry.action, entry.entity_key) == (
        f"slack:{user}",
        "acknowledge",
        "support-training",
    )
    assert (entry.before["state"], entry.after["state"]) == ("requested", "acknowledged")


@pytest.mark.parametrize(
    "action_id", [DependencyIds.ACKNOWLEDGE, DependencyIds.DELIVERED, DependencyIds.CANT_MAKE_IT]
)
def test_someone_outside_the_team_is_told_privately_and_nothing_changes(
    bot, standin, posted, action_id
):
    before = row_counts(bot.services.engine)
    row = dependency(bot.services.engine)
    press(bot, action_id, str(posted["id"]), user=OUTSIDER)
    standin.wait_for("response_url")
    bot.wait_idle()
    [reply] = standin.calls("response_url")
    assert "Only Marketing can do this." in reply.params["text"]
    assert reply.params.get("response_type", "ephemeral") == "ephemeral"
    assert reply.params["user"] == OUTSIDER
    assert row_counts(bot.services.engine) == before
    assert dependency(bot.services.engine) == row
    assert standin.calls("chat.update") == [] and standin.calls("chat.postMessage") == []
    assert standin.ephemerals(user=OUTSIDER)  # shown to the presser alone


def test_double_click_on_acknowledge_counts_once(bot, standin, posted):
    for _ in range(2):
        press(bot, DependencyIds.ACKNOWLEDGE, str(posted["id"]), user=MEMBER)
    bot.wait_idle()
    assert dependency(bot.services.engine).state == "acknowledged"
    assert len(dms(standin)) == 1
    assert len(audit(bot.services.engine)) == 1
    assert len(standin.calls("chat.update")) == 1
    assert replies(standin) == []  # the second click is no error: it simply changed nothing


def test_concurrent_clicks_from_two_members_count_once(bot, standin, posted):
    threads = [
        threading.Thread(
            target=press,
            args=(bot, DependencyIds.ACKNOWLEDGE, str(posted["id"])),
            kwargs={"user": u},
        )
        for u in (MEMBER, LEAD, ADMIN)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bot.wait_idle()
    assert len(audit(bot.services.engine)) == 1
    assert len(dms(standin)) == 1


@pytest.mark.parametrize(
    ("value", "user", "sentence"),
    [
        ("999999", MEMBER, "no longer exists"),
        ("abc", MEMBER, "no longer exists"),
        ("1; DROP TABLE dependency", MEMBER, "no longer exists"),
        ("-1", MEMBER, "no longer exists"),
        ("\u0661", MEMBER, "no longer exists"),  # an Arabic-Indic digit: isdigit(), not an id
        (None, MEMBER, "no longer exists"),
        ("budget", ADMIN, "no longer exists"),
        # Another dependency's id on this request: its own team only, and never from here.
        ("{budget}", MEMBER, "Only Finance can do this."),
        ("{budget}", ADMIN, "does not belong to this request"),
    ],
)
def test_tampered_values_get_a_plain_sentence_and_change_nothing(
    bot, standin, posted, value, user, sentence
):
    before = row_counts(bot.services.engine)
    with Session(bot.services.engine) as session:
        rows = session.exec(select(Dependency).order_by(Dependency.id)).all()
    value = value.format(budget=posted["budget"]) if value is not None else None
    press(bot, DependencyIds.ACKNOWLEDGE, value, user=user)
    standin.wait_for("response_url")
    bot.wait_idle()
    [reply] = replies(standin)
    assert sentence in reply and "Traceback" not in reply
    assert row_counts(bot.services.engine) == before
    with Session(bot.services.engine) as session:
        assert session.exec(select(Dependency).order_by(Dependency.id)).all() == rows
    assert standin.calls("chat.update") == []


def test_delivered_before_acknowledged_is_absent_and_a_forged_press_refused(bot, standin, posted):
    assert DependencyIds.DELIVERED not in buttons(the_request(standin))
    press(bot, DependencyIds.DELIVERED, str(posted["id"]), user=MEMBER)
    standin.wait_for("response_url")
    bot.wait_idle()
    [reply] = replies(standin)
    assert "has not been acknowledged yet" in reply
    assert dependency(bot.services.engine).state == "requested"


def test_delivered_closes_it(bot, standin, posted):
    press(bot, DependencyIds.ACKNOWLEDGE, str(posted["id"]), user=MEMBER)
    standin.wait_for("chat.update")
    bot.wait_idle()
    press(bot, DependencyIds.DELIVERED, str(posted["id"]), user=LEAD)
    standin.wait_for("chat.update", count=2)
    bot.wait_idle()
    stored = dependency(bot.services.engine)
    assert stored.state == "delivered" and stored.delivered_at is not None
    message = the_request(standin)
    assert "Delivered" in shown_text(message) and buttons(message) == []
    assert len(dms(standin)) == 2 and "delivered" in dms(standin)[-1].params["text"]
    # A second press on a stale message changes nothing and says nothing.
    press(bot, DependencyIds.DELIVERED, str(posted["id"]), user=LEAD)
    bot.wait_idle()
    assert len(audit(bot.services.engine)) == 2 and replies(standin) == []
    # Acknowledging what is delivered is refused.
    press(bot, DependencyIds.ACKNOWLEDGE, str(posted["id"]), user=LEAD)
    standin.wait_for("response_url")
    bot.wait_idle()
    assert "already delivered" in replies(standin)[0]


def test_a_button_on_a_replaced_request_is_refused(bot, standin, posted, tmp_path):
    from tests.dependency_support import import_text, plan_text

    old = the_request(standin)
    import_text(bot.services.engine, tmp_path, plan_text(need="Something else"), real_now())
    press(
        bot,
        DependencyIds.ACKNOWLEDGE,
        str(posted["id"]),
        user=MEMBER,
        message=old.as_dict(with_metadata=True),
    )
    standin.wait_for("response_url")
    bot.wait_idle()
    assert "replaced by a newer one" in replies(standin)[0]
    assert dependency(bot.services.engine).state == "requested"


# --- Can't make it ---------------------------------------------------------------------------------


def open_form(bot, standin, posted, *, user=MEMBER):
    payload = press(bot, DependencyIds.CANT_MAKE_IT, str(posted["id"]), user=user)
    [opened] = standin.wait_for("views.open")
    bot.wait_idle()
    assert opened.ok and opened.params["trigger_id"] == payload["trigger_id"]
    return opened.response["view"]["id"]


def form_values(reason: str | None = "Trainers are booked", day: str | None = "2027-02-08"):
    return {
        Form.REASON_BLOCK: {Form.REASON: {"type": "plain_text_input", "value": reason}},
        Form.DATE_BLOCK: {Form.DATE: {"type": "datepicker", "selected_date": day}},
    }


def submit(bot, view_id, values, *, user=MEMBER, metadata=None):
    view = bot.standin.view(view_id) or {}
    payload = bot.view_submission_payload(
        Form.VIEW,
        values,
        user_id=user,
        private_metadata=metadata if metadata is not None else view.get("private_metadata", ""),
        view_id=view_id,
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    return response


def test_cant_make_it_opens_the_form_at_once_and_records_a_good_answer(bot, standin, posted):
    view_id = open_form(bot, standin, posted)
    view = standin.view(view_id)
    assert view["callback_id"] == Form.VIEW
    assert {b.get("block_id") for b in view["blocks"]} >= {Form.REASON_BLOCK, Form.DATE_BLOCK}
    reason = "Trainers <!channel> & <@UCFO> are booked"
    response = submit(bot, view_id, form_values(reason=f"  {reason}  "))
    assert response.text in ("", "{}")
    standin.wait_for("chat.update")
    bot.wait_idle()
    stored = dependency(bot.services.engine)
    assert (stored.state, stored.note, stored.alternative_date.isoformat()) == (
        "blocked",
        reason,
        "2027-02-08",
    )
    message = the_request(standin)
    shown = shown_text(message)
    assert "Can't make it, said <@UBOB>" in shown and "|2027-02-08>" in shown
    assert "Trainers &lt;!channel&gt; &amp; &lt;@UCFO&gt; are booked" in shown
    assert "<!channel>" not in shown
    assert buttons(message) == [DependencyIds.CANT_MAKE_IT, DependencyIds.DELIVERED]
    [dm] = dms(standin)
    assert "<!channel>" not in json.dumps(dm.params)
    # The same form sent twice (a retry) counts once.
    submit(bot, view_id, form_values(reason=reason))
    bot.wait_idle()
    assert len(dms(standin)) == 1 and len(audit(bot.services.engine)) == 1


def test_cant_make_it_stays_available_after_an_acknowledgement(bot, standin, posted):
    press(bot, DependencyIds.ACKNOWLEDGE, str(posted["id"]), user=MEMBER)
    standin.wait_for("chat.update")
    bot.wait_idle()
    view_id = open_form(bot, standin, posted, user=LEAD)
    submit(bot, view_id, form_values(), user=LEAD)
    standin.wait_for("chat.update", count=2)
    bot.wait_idle()
    stored = dependency(bot.services.engine)
    assert stored.state == "blocked"
    assert stored.acknowledged_by_id == person_id(bot.services.engine, MEMBER)  # kept


@pytest.mark.parametrize(
    ("values", "errors", "sentence"),
    [
        (form_values(reason=""), {Form.REASON_BLOCK}, "Say why"),
        (form_values(reason="   \n "), {Form.REASON_BLOCK}, "Say why"),
        (form_values(reason=None), {Form.REASON_BLOCK}, "Say why"),
        (form_values(reason="x" * (REASON_MAX + 1)), {Form.REASON_BLOCK}, "under 1000"),
        (form_values(day="2020-01-01"), {Form.DATE_BLOCK}, "in the past"),
        (form_values(day="2027-02-30"), {Form.DATE_BLOCK}, "Pick a date"),
        (form_values(day="soon"), {Form.DATE_BLOCK}, "Pick a date"),
        (form_values(day=None), {Form.DATE_BLOCK}, "Pick a date"),
        ({}, {Form.REASON_BLOCK, Form.DATE_BLOCK}, ""),
        (form_values(reason="", day="2020-01-01"), {Form.REASON_BLOCK, Form.DATE_BLOCK}, ""),
    ],
)
def test_bad_form_input_is_a_field_error_and_nothing_changes(
    bot, standin, posted, values, errors, sentence
):
    view_id = open_form(bot, standin, posted)
    before = row_counts(bot.services.engine)
    response = submit(bot, view_id, values)
    bot.wait_idle()
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == errors
    assert sentence in " ".join(body["errors"].values())
    assert row_counts(bot.services.engine) == before
    assert dependency(bot.services.engine).state == "requested"
    assert standin.calls("chat.update") == []


def test_the_form_refused_to_an_outsider_says_so_in_the_form_too(bot, standin, posted):
    view_id = open_form(bot, standin, posted, user=OUTSIDER)
    standin.wait_for("views.update")
    bot.wait_idle()
    assert "Only Marketing can do this." in json.dumps(standin.view(view_id))
    assert "submit" not in standin.view(view_id)
    # A forged submission of the form by the outsider is refused in the form.
    before = row_counts(bot.services.engine)
    response = submit(
        bot,
        view_id,
        form_values(),
        user=OUTSIDER,
        metadata=json.dumps({"dependency_id": posted["id"]}),
    )
    body = response.json()
    assert body["response_action"] == "errors"
    assert "Only Marketing can do this." in body["errors"][Form.REASON_BLOCK]
    assert row_counts(bot.services.engine) == before


@pytest.mark.parametrize(
    "metadata", ["", "{}", '{"dependency_id": "7"}', "not json", '{"dependency_id": true}']
)
def test_a_form_with_unreadable_metadata_is_out_of_date(bot, standin, posted, metadata):
    view_id = open_form(bot, standin, posted)
    before = row_counts(bot.services.engine)
    response = submit(bot, view_id, form_values(), metadata=metadata)
    body = response.json()
    assert body["response_action"] == "errors"
    assert "out of date" in body["errors"][Form.REASON_BLOCK]
    assert row_counts(bot.services.engine) == before


def test_the_form_on_a_delivered_dependency_says_so(bot, standin, posted):
    press(bot, DependencyIds.ACKNOWLEDGE, str(posted["id"]), user=MEMBER)
    standin.wait_for("chat.update")
    bot.wait_idle()
    press(bot, DependencyIds.DELIVERED, str(posted["id"]), user=MEMBER)
    standin.wait_for("chat.update", count=2)
    bot.wait_idle()
    view_id = open_form(bot, standin, posted)
    standin.wait_for("views.update")
    assert "already delivered" in json.dumps(standin.view(view_id))


# --- races with the tick -----------------------------------------------------------------------


def test_acknowledged_while_its_request_is_being_posted(bot, standin, tmp_path):
    now = real_now()
    imported(bot.services, tmp_path, now)
    training = dependency(bot.services.engine)
    standin.reset_calls()
    standin.delay_next("chat.postMessage", 2.0)
    tick = threading.Thread(target=post_dependency_requests, args=(bot.services, now))
    tick.start()
    deadline = time.monotonic() + 5
    while not requests(bot.services.engine):  # claimed: the post is on its way
        assert time.monotonic() < deadline, "the request was never claimed"
        time.sleep(0.02)
    assert requests(bot.services.engine)[0].message_ts is None
    press(bot, DependencyIds.ACKNOWLEDGE, str(training.id), user=MEMBER)
    bot.wait_idle()
    assert dependency(bot.services.engine).state == "acknowledged"
    tick.join(10)
    message = the_request(standin)
    assert "Acknowledged by <@UBOB>" in shown_text(message)
    assert buttons(message) == [DependencyIds.CANT_MAKE_IT, DependencyIds.DELIVERED]
    assert len(dms(standin)) == 1
    [request] = requests(bot.services.engine)
    assert request.message_ts == message.ts
    # Settled: a later tick has nothing to say.
    standin.reset_calls()
    post_dependency_requests(bot.services, now)
    assert standin.calls() == []


def test_pulse_answer_marks_it_at_risk_and_the_request_shows_it(bot, standin, posted):
    from bot.pulses.answers import record_answer
    from storage.db import session_scope
    from tests.test_pulse_answer_core import make_pulse

    now = real_now()
    with session_scope(bot.services.engine) as session:
        training = session.get(Dependency, posted["id"])
        initiative_id = training.initiative_id
    with session_scope(bot.services.engine) as session:
        from storage.models import Initiative

        pulse = make_pulse(
            session,
            initiative=session.get(Initiative, initiative_id),
            due_at=now,
            next_due_at=now.replace(year=now.year + 1),
        )
        recorded = record_answer(
            session,
            pulse_id=pulse.id,
            person=OWNER,
            status="at_risk",
            blockers="Trainers <!channel> unavailable",
            dependency_reports={posted["id"]: True},
            now=now,
        )
    assert recorded.dependencies_changed == (posted["id"],)
    stored = dependency(bot.services.engine)
    assert (stored.state, stored.note) == ("at_risk", "Trainers <!channel> unavailable")
    assert stored.state_changed_by_id == person_id(bot.services.engine, OWNER)
    post_dependency_requests(bot.services, now)  # the tick's re-sync
    message = the_request(standin)
    assert "At risk: <@UALICE> reported it late" in shown_text(message)
    assert buttons(message) == [DependencyIds.CANT_MAKE_IT, DependencyIds.DELIVERED]
    with Session(bot.services.engine) as session:
        assert session.exec(select(DependencyRequest)).all()
