"""App Home: published on every app_home_opened, from the live plan, within 100 blocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from storage.db import session_scope
from storage.models import DecisionPoll, Milestone, PulseAnswer, PulseRequest
from templates.ids import PulseIds
from tests import factories as f
from tests.query_fixtures import (
    HOSTILE,
    HOSTILE_ESCAPED,
    all_text,
    assert_pings_nobody,
    build_portal_plan,
    check_home,
)
from tests.test_pulse_answer_slack import button_values, click, post_prompt, submit, values


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return build_portal_plan(session, title=HOSTILE)


def open_home(bot, user):
    assert bot.app_home_opened(user).status_code == 200
    bot.wait_idle()
    view = bot.standin.home(user)
    assert view is not None, "no view was published"
    check_home(view)
    return view


def test_owner_sees_initiatives_with_health_and_pending_pulses(bot, plan, services):
    with Session(services.engine) as session:
        at = datetime.now(UTC) - timedelta(hours=2)
        session.add(
            PulseRequest(
                initiative_id=plan["beta"].id,
                owner_id=plan["alice"].id,
                period=at.isoformat(),
                due_at=at,
                state="sent",
                sent_at=at,
                channel_id="DUALICE",
                message_ts="1.0",
            )
        )
        session.commit()
    view = open_home(bot, "UALICE")
    text = all_text(view)
    assert "Your initiatives (1)" in text and HOSTILE_ESCAPED in text
    assert "Pulses waiting for your answer (1)" in text
    assert_pings_nobody(view)


def test_provider_team_lead_sees_dependencies_to_act_on(bot, plan):
    text = all_text(open_home(bot, "UBOB"))
    assert "Dependencies your teams must act on (1)" in text
    assert "Support staff trained for the beta" in text and HOSTILE_ESCAPED in text


def test_leader_sees_open_polls(bot, plan, services):
    with Session(services.engine) as session:
        ready = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        now = datetime.now(UTC)
        session.add(
            DecisionPoll(
                milestone_id=ready.id,
                open_key=f"milestone:{ready.id}",
                opened_at=now,
                deadline=now + timedelta(days=2),
                channel_id="CDECISIONS",
                message_ts="1.2",
            )
        )
        session.commit()
    view = open_home(bot, "UCIO")
    text = all_text(view)
    assert "Decision polls open to your vote (1)" in text
    assert "Feature-complete" in text and "<#CDECISIONS>" in text and "your vote is awaited" in text
    assert_pings_nobody(view)


def test_someone_not_in_the_plan_gets_a_useful_home(bot, plan):
    text = all_text(open_home(bot, "UCMO"))
    assert "not named in the plan" in text and "`/kpi`" in text


def test_home_is_refreshed_on_every_open(bot, plan, services):
    open_home(bot, "UALICE")
    with Session(services.engine) as session:
        f.initiative(session, owner=plan["alice"], team=plan["it"], key="second", title="Second")
        session.commit()
    assert "Your initiatives (2)" in all_text(open_home(bot, "UALICE"))
    assert len(bot.standin.calls("views.publish")) == 2


def test_the_messages_tab_publishes_nothing(bot, plan):
    response = bot.event(
        {"type": "app_home_opened", "user": "UALICE", "channel": "D1", "tab": "messages"}
    )
    assert response.status_code == 200
    bot.wait_idle()
    assert bot.standin.calls("views.publish") == []


def test_a_huge_share_of_the_plan_stays_within_100_blocks(bot, services):
    with Session(services.engine) as session:
        f.plan_settings(session)
        alice = f.person(session, slack_id="UALICE", is_leader=True)
        mine = f.team(session, lead=alice)
        other = f.team(session)
        for n in range(300):
            initiative = f.initiative(
                session, owner=alice, team=mine, title=f"Initiative {n} " + "&" * 100
            )
            f.milestone(session, initiative=initiative, due=date(2026, 1, 1))
            theirs = f.initiative(session, owner=f.person(session), team=other)
            f.dependency(
                session,
                initiative=theirs,
                provider=mine,
                needed_by=date(2027, 1, 1),
                need="<&>" * 60,
            )
            now = datetime.now(UTC)
            session.add(
                PulseRequest(
                    initiative_id=initiative.id,
                    owner_id=alice.id,
                    period=f"p{n}",
                    due_at=now,
                    state="sent",
                )
            )
            ms = f.milestone(session, initiative=theirs, due=date(2027, 1, 1))
            session.add(
                DecisionPoll(milestone_id=ms.id, open_key=f"m{n}", opened_at=now, deadline=now)
            )
        session.commit()
    view = open_home(bot, "UALICE")
    text = all_text(view)
    assert text.count("more.") >= 3 and "`/plan mine` lists them" in text
    assert_pings_nobody(view)


# --- answering pending pulses from Home -------------------------------------------------------


@pytest.fixture
def prompt(services, standin):
    """Alice's prompt DM for two initiatives was posted; neither is answered."""
    return post_prompt(services, standin)


def answer_buttons(payload) -> dict[int, list]:
    """The answer buttons of each pulse on a surface (Home view or DM), by pulse id."""
    prefix = f"{PulseIds.ACTIONS_BLOCK}:"
    return {
        int(block["block_id"].removeprefix(prefix)): block["elements"]
        for block in payload["blocks"]
        if block["type"] == "actions" and block.get("block_id", "").startswith(prefix)
    }


def test_pending_pulses_on_home_have_the_dms_answer_buttons(bot, standin, prompt):
    view = open_home(bot, "UALICE")
    [dm] = standin.messages("UALICE")
    assert answer_buttons(view) == answer_buttons({"blocks": dm.blocks})
    assert set(answer_buttons(view)) == {prompt["portal"], prompt["crm"]}
    assert "Pulses waiting for your answer (2)" in all_text(view)


def test_answering_from_home_updates_the_dm_in_place_and_home(bot, standin, prompt):
    view = open_home(bot, "UALICE")
    standin.reset_calls()
    payload = bot.block_action_payload(
        PulseIds.AT_RISK,
        str(prompt["portal"]),
        user_id="UALICE",
        view=standin.home("UALICE"),
        block_id=f"{PulseIds.ACTIONS_BLOCK}:{prompt['portal']}",
    )
    assert payload["container"]["type"] == "view" and view["type"] == "home"
    assert bot.action(payload).status_code == 200
    [update] = standin.wait_for("chat.update")
    [publish] = standin.wait_for("views.publish")
    bot.wait_idle()
    with Session(bot.services.engine) as session:
        [answer] = session.exec(select(PulseAnswer)).all()
    assert (answer.pulse_request_id, answer.status) == (prompt["portal"], "at_risk")
    assert (update.params["channel"], update.params["ts"]) == (prompt["channel"], prompt["ts"])
    [dm] = standin.messages("UALICE")
    assert button_values(dm.blocks) == {str(prompt["crm"])}  # the DM was edited, not reposted
    assert publish.params["user_id"] == "UALICE"
    home = standin.home("UALICE")
    check_home(home)
    assert set(answer_buttons(home)) == {prompt["crm"]}
    assert "Pulses waiting for your answer (1)" in all_text(home)
    assert standin.calls("chat.postMessage") == [] and standin.calls("response_url") == []


def test_a_quick_answer_in_the_dm_republishes_home(bot, standin, prompt):
    click(bot, PulseIds.ON_TRACK, prompt["portal"])
    standin.wait_for("chat.update")
    [publish] = standin.wait_for("views.publish")
    bot.wait_idle()
    assert publish.params["user_id"] == "UALICE"
    home = standin.home("UALICE")
    check_home(home)
    assert set(answer_buttons(home)) == {prompt["crm"]}


def test_details_given_in_the_dm_republish_home(bot, standin, prompt):
    submit(bot, prompt, values(prompt, status="at_risk", kpi="12"))
    standin.wait_for("chat.update")
    [publish] = standin.wait_for("views.publish")
    bot.wait_idle()
    assert publish.params["user_id"] == "UALICE"
    assert set(answer_buttons(standin.home("UALICE"))) == {prompt["crm"]}


def test_a_pulse_whose_period_ended_no_longer_waits_on_home(bot, standin, prompt):
    with session_scope(bot.services.engine) as session:
        pulse = session.get(PulseRequest, prompt["portal"])
        pulse.next_due_at = datetime.now(UTC) - timedelta(minutes=1)
        session.add(pulse)
    view = open_home(bot, "UALICE")
    assert set(answer_buttons(view)) == {prompt["crm"]}
    assert "Pulses waiting for your answer (1)" in all_text(view)


def test_many_pending_pulses_on_home_are_capped_and_counted(bot, services):
    now = datetime.now(UTC)
    with Session(services.engine) as session:
        f.plan_settings(session)
        alice = f.person(session, slack_id="UALICE", is_leader=True)
        team = f.team(session, lead=alice)
        for n in range(40):
            initiative = f.initiative(session, owner=alice, team=team, title=f"Initiative {n}")
            session.add(
                PulseRequest(
                    initiative_id=initiative.id,
                    owner_id=alice.id,
                    period=f"p{n}",
                    due_at=now - timedelta(hours=1),
                    next_due_at=now + timedelta(days=6),
                    state="sent",
                    channel_id="DUALICE",
                    message_ts=f"{n}.0",
                )
            )
        session.commit()
    view = open_home(bot, "UALICE")
    shown = len(answer_buttons(view))
    assert 0 < shown < 40
    text = all_text(view)
    assert "Pulses waiting for your answer (40)" in text
    assert f"…and {40 - shown} more" in text and "`/pulse`" in text
