"""A decision followed through in Slack: the knock-on DMs and thread line, their buttons and modal, the shift of later milestones, action reminders."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.decisions.knock_on import decision_follow_up
from bot.decisions.outcomes import follow_through
from standin.validation import check_blocks, check_view
from storage.models import (
    DecisionAction,
    DecisionOption,
    Dependency,
    DependencyState,
    KnockOn,
    KnockOnAnswer,
    Milestone,
)
from templates.ids import FollowThroughIds as Ids
from tests.decision_support import DECIDED, PROPOSED, decide, slip_plan
from tests.slack_harness import row_counts


@pytest.fixture
def decided(services, standin) -> dict[str, Any]:
    """The milestone delayed by 14 days in a poll whose parent message is in #exec-decisions."""
    parent = services.slack.post_message(channel="CDECISIONS", text="Decision needed")
    with Session(services.engine) as session:
        plan = slip_plan(session)
        decision = decide(session, plan.milestone, DecisionOption.DELAY, message_ts=parent.ts)
        session.commit()
        ids = {"decision": decision.id, "plan": plan, "parent": parent.ts}
    standin.reset_calls()
    return ids


def _knock_ons(engine) -> list[KnockOn]:
    with Session(engine) as session:
        return list(session.exec(select(KnockOn).order_by(KnockOn.id)))


def _thread(standin, parent: str) -> list:
    return [m for m in standin.messages("CDECISIONS") if m.thread_ts == parent and m.ts != parent]


def _buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {
        e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
    }


def test_follow_through_asks_each_knock_on_once_and_lists_them_in_the_thread(
    services, standin, decided
):
    follow_through(services, decided["decision"], DECIDED)

    dms = standin.messages("UCMO")
    assert len(dms) == 2  # one per moved dependency, both provided by Marketing (lead: the CMO)
    for dm in dms:
        check_blocks(dm.blocks)
        assert "<!channel>" not in dm.text + str(dm.blocks)  # the milestone's title is escaped
        assert "<!here>" not in str(dm.blocks)
        assert set(_buttons(dm.blocks)) == {Ids.STILL_ON_TRACK, Ids.MOVES_US}
    assert all(k.asked_at is not None and k.message_ts for k in _knock_ons(services.engine))

    [line] = _thread(standin, decided["parent"])
    check_blocks(line.blocks)
    assert "0 of 2 answered" in line.text
    assert str(line.blocks).count("not answered yet") == 2
    assert "&lt;!channel&gt;" in str(line.blocks)

    # The owner is offered to shift the later milestone by the same 14 days.
    [offer] = standin.messages("UALICE")
    check_blocks(offer.blocks)
    assert _buttons(offer.blocks) == {Ids.SHIFT_LATER: str(decided["decision"])}
    assert "14 days" in offer.text

    # Marketing is asked anew, with the new dates.
    requests = [m for m in standin.messages("CMARKETING") if m.thread_ts is None]
    assert len(requests) == 2
    with Session(services.engine) as session:
        deps = session.exec(select(Dependency).order_by(Dependency.id)).all()
        assert all(d.request_revision == 2 and d.requested_at is not None for d in deps)

    # Called again (the tick's retry, a second replica): nothing is sent twice.
    standin.reset_calls()
    follow_through(services, decided["decision"], DECIDED + timedelta(minutes=1))
    assert standin.calls() == []
    assert decision_follow_up(services, DECIDED + timedelta(minutes=2)).followed_up == 0
    assert standin.calls() == []


def test_the_tick_sends_what_a_failed_follow_through_left_unsent(services, standin, decided):
    standin.fail_next("chat.postMessage", status=500, times=20)
    follow_through(services, decided["decision"], DECIDED)
    assert all(k.asked_at is None for k in _knock_ons(services.engine))
    report = decision_follow_up(services, DECIDED + timedelta(minutes=1))
    assert report.followed_up == 1
    assert len(standin.messages("UCMO")) == 2
    assert all(k.asked_at is not None for k in _knock_ons(services.engine))


# --- the knock-on buttons, through the stand-in -------------------------------------------------------


@pytest.fixture
def asked(bot, decided) -> dict[str, Any]:
    follow_through(bot.services, decided["decision"], DECIDED)
    bot.standin.reset_calls()
    first = _knock_ons(bot.services.engine)[0]
    return {
        **decided,
        "knock_on": first.id,
        "dm_channel": first.channel_id,
        "dm_ts": first.message_ts,
    }


def press(bot, action_id: str, value: Any, *, user_id: str, asked: dict[str, Any]):
    payload = bot.block_action_payload(
        action_id,
        str(value),
        user_id=user_id,
        channel_id=asked["dm_channel"],
        block_id=f"{Ids.KNOCK_ON_BLOCK}:{value}",
        message={"ts": asked["dm_ts"], "text": "", "blocks": []},
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()
    return payload


def test_only_the_person_asked_may_answer_a_knock_on(bot, standin, asked):
    before = row_counts(bot.services.engine)
    press(bot, Ids.STILL_ON_TRACK, asked["knock_on"], user_id="UBOB", asked=asked)
    [reply] = standin.wait_for("response_url")
    assert reply.params["user"] == "UBOB"
    assert "Only the person this was sent to can answer it" in reply.params["text"]
    assert row_counts(bot.services.engine) == before
    assert _knock_ons(bot.services.engine)[0].answer is None
    assert standin.calls("chat.update") == []


def test_still_on_track_is_recorded_once_and_shown_in_the_thread(bot, standin, asked):
    press(bot, Ids.STILL_ON_TRACK, asked["knock_on"], user_id="UCMO", asked=asked)
    press(bot, Ids.STILL_ON_TRACK, asked["knock_on"], user_id="UCMO", asked=asked)  # double click
    first = _knock_ons(bot.services.engine)[0]
    assert first.answer == KnockOnAnswer.ON_TRACK
    [line] = _thread(standin, asked["parent"])
    assert "1 of 2 answered" in line.text and "still on track" in str(line.blocks)
    updates = standin.calls("chat.update")
    assert {c.params["ts"] for c in updates} == {line.ts, asked["dm_ts"]}
    assert len([c for c in updates if c.params["ts"] == line.ts]) == 1  # the repeat changed nothing
    [dm] = [m for m in standin.messages("UCMO") if m.ts == asked["dm_ts"]]
    assert _buttons(dm.blocks) == {}  # answered: the buttons are gone


def _open_moves_us(bot, standin, asked, *, user_id: str = "UCMO") -> dict[str, Any]:
    press(bot, Ids.MOVES_US, asked["knock_on"], user_id=user_id, asked=asked)
    [opened] = standin.calls("views.open")
    view = opened.params["view"]
    view = view if isinstance(view, dict) else __import__("json").loads(view)
    check_view(view, kind="modal")
    return view


def _moves_us_values(picked: str | None, note: str | None) -> dict[str, Any]:
    return {
        Ids.MOVES_US_DATE_BLOCK: {
            Ids.MOVES_US_DATE: {"type": "datepicker", "selected_date": picked}
        },
        Ids.MOVES_US_NOTE_BLOCK: {Ids.MOVES_US_NOTE: {"type": "plain_text_input", "value": note}},
    }


def _submit(bot, view: dict[str, Any], values: dict[str, Any], user_id: str = "UCMO"):
    payload = bot.view_submission_payload(
        Ids.MOVES_US_VIEW, values, user_id=user_id, private_metadata=view["private_metadata"]
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    bot.wait_idle()
    return response


def test_this_moves_us_too_opens_only_for_the_person_asked(bot, standin, asked):
    press(bot, Ids.MOVES_US, asked["knock_on"], user_id="UBOB", asked=asked)
    assert standin.calls("views.open") == []
    [reply] = standin.wait_for("response_url")
    assert "Only the person this was sent to" in reply.params["text"]


@pytest.mark.parametrize(
    ("picked", "note", "block", "said"),
    [
        (None, "Trainers are away", Ids.MOVES_US_DATE_BLOCK, "Pick the new date"),
        ("next tuesday", "Trainers are away", Ids.MOVES_US_DATE_BLOCK, "That is not a date"),
        ("2027-02-05", "   ", Ids.MOVES_US_NOTE_BLOCK, "Say why it cannot be delivered"),
        ("2026-01-05", "Trainers are away", Ids.MOVES_US_DATE_BLOCK, "in the past"),
    ],
)
def test_bad_input_in_this_moves_us_too_is_a_field_error_and_writes_nothing(
    bot, standin, asked, picked, note, block, said
):
    view = _open_moves_us(bot, standin, asked)
    before = row_counts(bot.services.engine)
    response = _submit(bot, view, _moves_us_values(picked, note))
    body = response.json()
    assert body["response_action"] == "errors", body
    assert said in body["errors"][block]
    assert row_counts(bot.services.engine) == before
    assert _knock_ons(bot.services.engine)[0].answer is None
    with Session(bot.services.engine) as session:
        dependency = session.get(Dependency, asked["plan"].dependency)
        assert dependency is not None and dependency.state == DependencyState.REQUESTED


def test_this_moves_us_too_records_the_new_date_through_the_dependency_rules(bot, standin, asked):
    view = _open_moves_us(bot, standin, asked)
    assert view["blocks"][1]["element"]["initial_date"] == "2027-01-24"
    response = _submit(bot, view, _moves_us_values("2027-02-05", "Trainers <!here> away"))
    assert response.text in ("", "null") or response.json().get("response_action") != "errors"
    knock_on = _knock_ons(bot.services.engine)[0]
    assert (knock_on.answer, knock_on.answer_date) == (KnockOnAnswer.MOVES_US, date(2027, 2, 5))
    with Session(bot.services.engine) as session:
        dependency = session.get(Dependency, asked["plan"].dependency)
        assert dependency is not None
        assert (dependency.state, dependency.alternative_date) == (
            DependencyState.BLOCKED,
            date(2027, 2, 5),
        )
    [line] = _thread(standin, asked["parent"])
    assert "this moves them too" in str(line.blocks)


# --- shifting the later milestones -------------------------------------------------------------------


def _shift(bot, asked, user_id: str):
    [offer] = [m for m in bot.standin.messages("UALICE")]
    payload = bot.block_action_payload(
        Ids.SHIFT_LATER,
        str(asked["decision"]),
        user_id=user_id,
        channel_id=bot.standin.state.dms.get("UALICE"),
        block_id=f"{Ids.SHIFT_LATER_BLOCK}:{asked['decision']}",
        message={"ts": offer.ts, "text": "", "blocks": []},
    )
    assert bot.action(payload).status_code == 200
    bot.wait_idle()


def _later_due(engine, asked) -> date:
    with Session(engine) as session:
        later = session.get(Milestone, asked["plan"].later)
        assert later is not None
        return later.due


def test_only_the_owner_or_an_admin_may_shift_the_later_milestones(bot, standin, asked):
    before = row_counts(bot.services.engine)
    _shift(bot, asked, "UBOB")
    [reply] = standin.wait_for("response_url")
    assert "Only the owner of Portal &amp; &lt;!here&gt; or an admin" in reply.params["text"]
    assert row_counts(bot.services.engine) == before
    assert _later_due(bot.services.engine, asked) == date(2027, 2, 10)


def test_the_shift_moves_the_later_milestones_once(bot, standin, asked):
    _shift(bot, asked, "UALICE")
    _shift(bot, asked, "UALICE")  # a double click
    assert _later_due(bot.services.engine, asked) == date(2027, 2, 24)
    first, second = standin.wait_for("response_url", count=2)
    assert "Shifted 1 later milestone by 14 days" in first.params["text"]
    assert "already shifted" in second.params["text"]
    # The owner shifted their own milestone: nobody else to ask about it.
    assert len(_knock_ons(bot.services.engine)) == 2


# --- the action reminder ---------------------------------------------------------------------------


def test_the_resources_action_is_reminded_on_its_date_once(services, standin):
    with Session(services.engine) as session:
        plan = slip_plan(session)
        decide(
            session, plan.milestone, DecisionOption.ADD_RESOURCES, resources="Two <!here> testers"
        )
        session.commit()
    standin.reset_calls()
    # 26 Jan, the day before it is due: nothing.
    assert decision_follow_up(services, DECIDED + timedelta(days=6)).reminded == 0
    assert standin.calls("chat.postMessage") == []
    report = decision_follow_up(services, DECIDED + timedelta(days=7))
    assert report.reminded == 1
    [reminder] = standin.messages("UCOO")
    check_blocks(reminder.blocks)
    assert "Two &lt;!here&gt; testers" in str(reminder.blocks)
    assert decision_follow_up(services, DECIDED + timedelta(days=8)).reminded == 0
    assert len(standin.messages("UCOO")) == 1
    with Session(services.engine) as session:
        action = session.exec(select(DecisionAction)).one()
        assert action.reminded_at is not None
    assert PROPOSED  # the shared plan's constants stay in use
