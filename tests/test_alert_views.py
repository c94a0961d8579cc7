"""`/plan alerts` and the alerts on App Home, driven the way Slack drives them, from alerts the engine raised."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.alerts import run_detection
from storage.db import session_scope
from storage.models import Alert, AlertState, DependencyState, Milestone, MilestoneStatus
from templates.ids import AlertKinds, MilestoneIds
from tests import factories as f
from tests.query_fixtures import (
    HOSTILE,
    HOSTILE_ESCAPED,
    all_text,
    ask_command,
    assert_pings_nobody,
    check_home,
)

NOW = datetime.now(UTC)
LONG_AGO = NOW.date() - timedelta(days=10)


def detect(services) -> None:
    """One detection pass now: the alerts raised and posted to the stand-in's channels."""
    run_detection(services, datetime.now(UTC))


@pytest.fixture
def plan(services) -> dict[str, Any]:
    """Alice owns Portal (IT, led by Chiyo) and Bob owns Campaign (Marketing, which he leads).

    Both have a milestone missed ten days ago; Portal waits for a blocked dependency Marketing
    must deliver; an owner who left Slack is an admin problem (Dana is the admin).
    """
    with session_scope(services.engine) as session:
        f.plan_settings(session, timezone="America/New_York")
        alice = f.person(session, slack_id="UALICE", name="Alice")
        bob = f.person(session, slack_id="UBOB", name="Bob")
        cio = f.person(session, slack_id="UCIO", name="Chiyo")
        f.person(session, slack_id="UCOO", name="Dana", is_admin=True)
        gone = f.person(session, slack_id="UGONE", name="Gone", active=False)
        it = f.team(session, name="IT Delivery", channel_id="CDELIVERY", lead=cio, members=[alice])
        marketing = f.team(session, name="Marketing", channel_id="CMARKETING", lead=bob)
        portal = f.initiative(session, owner=alice, team=it, title="Portal & <!here>")
        campaign = f.initiative(session, owner=bob, team=marketing, title="Campaign")
        f.initiative(session, owner=gone, team=it, title="Left behind")
        beta = f.milestone(session, initiative=portal, due=LONG_AGO, title=HOSTILE)
        launch = f.milestone(session, initiative=campaign, due=LONG_AGO, title="Campaign launch")
        f.dependency(
            session,
            initiative=portal,
            provider=marketing,
            needed_by=NOW.date() + timedelta(days=30),
            need="Support staff trained",
            state=DependencyState.BLOCKED,
            note="No trainers & no <!channel>",
        )
        ids = {"beta": beta.id, "launch": launch.id}
    detect(services)
    return ids


def ask(bot, user: str) -> dict[str, Any]:
    return ask_command(bot, "/plan", "alerts", user)


def open_home(bot, user: str) -> dict[str, Any]:
    assert bot.app_home_opened(user).status_code == 200
    bot.wait_idle()
    view = bot.standin.home(user)
    assert view is not None, "no view was published"
    check_home(view)
    return view


def milestone_buttons(view: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    prefix = f"{MilestoneIds.ACTIONS_BLOCK}:"
    return {
        block["block_id"].removeprefix(prefix): block["elements"]
        for block in view["blocks"]
        if block["type"] == "actions" and block.get("block_id", "").startswith(prefix)
    }


def open_alerts(engine) -> list[Alert]:
    with Session(engine) as session:
        statement = select(Alert).where(Alert.state == AlertState.OPEN).order_by(Alert.id)
        return list(session.exec(statement))


# --- /plan alerts ---------------------------------------------------------------------------


def test_the_readers_teams_come_first(bot, plan):
    bob = all_text(ask(bot, "UBOB"))  # leads Marketing: his campaign, and what Marketing owes
    assert "2 open alerts about your teams and initiatives" in bob
    assert "1 open alert elsewhere in the plan" in bob
    assert (
        bob.index("Campaign launch")
        < bob.index("elsewhere in the plan")
        < bob.index(HOSTILE_ESCAPED)
    )
    assert bob.index("Support staff trained") < bob.index("elsewhere in the plan")

    alice = all_text(ask(bot, "UALICE"))  # a member of IT who owns Portal
    assert "2 open alerts about your teams and initiatives" in alice
    assert (
        alice.index(HOSTILE_ESCAPED)
        < alice.index("elsewhere in the plan")
        < alice.index("Campaign launch")
    )
    assert alice.index("Support staff trained") < alice.index("elsewhere in the plan")


def test_each_line_is_the_alerts_own_wording_with_a_link_to_its_message(bot, plan, standin):
    message = ask(bot, "UALICE")
    text = all_text(message)
    assert "was due <!date^" in text and "is not done" in text  # blocks/alerts/line.txt.j2
    [posted] = [
        m for m in standin.messages("CDELIVERY") if m.thread_ts is None and "Missed" in m.text
    ]
    link = f"/archives/CDELIVERY/p{posted.ts.replace('.', '')}|see the alert>"
    assert link in text
    assert text.count("|see the alert>") == 3  # every alert was posted to a channel
    assert_pings_nobody(message)


def test_nasty_titles_are_shown_literally_and_ping_nobody(bot, plan):
    message = ask(bot, "UBOB")
    text = all_text(message)
    assert HOSTILE_ESCAPED in text  # <!channel> launch & <@U123>, escaped
    assert "Portal &amp; &lt;!here&gt;" in text
    assert_pings_nobody(message)


def test_admin_problems_are_listed_to_admins_only(bot, plan):
    admin = all_text(ask(bot, "UCOO"))
    assert "1 open alert about your teams and initiatives" in admin
    assert "Initiative owner *Gone* cannot be reached" in admin
    assert "3 open alerts elsewhere in the plan" in admin
    for user in ("UALICE", "UBOB"):
        assert "cannot be reached" not in all_text(ask(bot, user))


def test_someone_not_in_the_plan_sees_every_alert_and_none_as_theirs(bot, plan):
    text = all_text(ask(bot, "UCMO"))
    assert "3 open alerts.* You are not named in the plan" in text
    assert "about your teams" not in text and "cannot be reached" not in text


def test_no_open_alert_is_said_plainly(bot, services):
    with session_scope(services.engine) as session:
        f.plan_settings(session)
        f.person(session, slack_id="UALICE")
    detect(services)
    message = ask(bot, "UALICE")
    assert "No alerts are open" in all_text(message)
    assert "see the alert" not in all_text(message)


def test_over_fifty_alerts_fit_one_message_and_say_how_many_more(bot, services):
    with session_scope(services.engine) as session:
        f.plan_settings(session)
        alice = f.person(session, slack_id="UALICE")
        it = f.team(session, channel_id="CDELIVERY", lead=alice)
        other = f.team(session, channel_id="CMARKETING")
        mine = f.initiative(session, owner=alice, team=it)
        theirs = f.initiative(session, owner=f.person(session, slack_id="UBOB"), team=other)
        for n in range(70):
            f.milestone(session, initiative=mine, due=LONG_AGO, title=f"Mine {n} {HOSTILE}")
            f.milestone(session, initiative=theirs, due=LONG_AGO, title=f"Theirs {n}")
    detect(services)
    assert len(open_alerts(services.engine)) == 140
    message = ask(bot, "UALICE")  # ask_command checks ≤ 50 blocks
    text = all_text(message)
    assert "70 open alerts about your teams" in text and "70 open alerts elsewhere" in text
    shown_mine, shown_theirs = text.count("*Mine "), text.count("*Theirs ")
    assert 0 < shown_mine < 70 and 0 < shown_theirs < 70
    assert f"…and {70 - shown_mine} more of yours." in text
    assert f"…and {70 - shown_theirs} more." in text
    assert_pings_nobody(message)


def test_a_slow_permalink_leaves_its_line_without_a_link_not_the_answer_late(bot, plan, standin):
    standin.reset_calls()
    standin.delay_next("chat.getPermalink", 2.5)
    started = time.monotonic()
    text = all_text(ask(bot, "UBOB"))
    assert time.monotonic() - started < 2.5  # answered inside Slack's 3 seconds
    assert text.count("|see the alert>") == 2  # of 3: one link was not back in time
    assert "Campaign launch" in text and "Support staff trained" in text
    # The late lookup still finishes, and is kept: the next answer has every link, asked once.
    standin.wait_for("chat.getPermalink", count=3, timeout=5)
    time.sleep(0.2)  # its answer reaching the bot, after the stand-in recorded the call
    assert all_text(ask(bot, "UBOB")).count("|see the alert>") == 3
    assert len(standin.calls("chat.getPermalink")) == 3


# --- App Home -------------------------------------------------------------------------------


def test_home_shows_the_readers_own_alerts_with_their_buttons(bot, plan):
    alice = open_home(bot, "UALICE")
    text = all_text(alice)
    assert "Open alerts about your part of the plan (2)" in text
    assert HOSTILE_ESCAPED in text and "Support staff trained" in text
    assert "Campaign launch" not in text and "cannot be reached" not in text
    # Her missed milestone has its buttons; the dependency alert has none (its buttons are
    # not built yet).
    assert list(milestone_buttons(alice)) == [str(plan["beta"])]
    assert [b["action_id"] for b in milestone_buttons(alice)[str(plan["beta"])]] == [
        MilestoneIds.MARK_DONE,
        MilestoneIds.NEW_DATE,
        MilestoneIds.DESCOPE,
    ]
    assert_pings_nobody(alice)

    bob = open_home(bot, "UBOB")  # his campaign, and what his team owes Portal
    assert "Open alerts about your part of the plan (2)" in all_text(bob)
    assert HOSTILE_ESCAPED not in all_text(bob)
    assert list(milestone_buttons(bob)) == [str(plan["launch"])]

    chiyo = open_home(bot, "UCIO")  # leads IT: Portal is hers to act on too
    assert list(milestone_buttons(chiyo)) == [str(plan["beta"])]


def test_admins_see_the_admin_problems_and_outsiders_see_none(bot, plan):
    admin = all_text(open_home(bot, "UCOO"))
    assert "Open alerts about your part of the plan (1)" in admin
    assert "cannot be reached" in admin
    outsider = all_text(open_home(bot, "UCMO"))
    assert "Open alerts about" not in outsider and "not named in the plan" in outsider


def test_mark_done_pressed_on_home_resolves_the_alert_and_redraws_home(bot, plan, standin):
    open_home(bot, "UALICE")
    standin.reset_calls()
    home = standin.home("UALICE")
    [button, *_] = milestone_buttons(home)[str(plan["beta"])]
    payload = bot.block_action_payload(
        MilestoneIds.MARK_DONE,
        button["value"],
        user_id="UALICE",
        view=home,
        block_id=f"{MilestoneIds.ACTIONS_BLOCK}:{plan['beta']}",
        action=button,
    )
    assert payload["container"]["type"] == "view"
    assert bot.action(payload).status_code == 200
    standin.wait_for("views.publish")
    bot.wait_idle()

    with Session(bot.services.engine) as session:
        assert session.get(Milestone, plan["beta"]).status == MilestoneStatus.DONE
    kinds = {(a.kind, a.subject) for a in open_alerts(bot.services.engine)}
    assert (AlertKinds.MILESTONE_MISSED, f"milestone:{plan['beta']}") not in kinds
    [updated] = [m for m in standin.messages("CDELIVERY") if "Missed milestone" in m.text]
    assert "Resolved" in updated.text  # the channel message, redrawn in place
    redrawn = standin.home("UALICE")
    check_home(redrawn)
    assert "Open alerts about your part of the plan (1)" in all_text(redrawn)
    assert milestone_buttons(redrawn) == {}


def test_many_alerts_keep_home_within_100_blocks(bot, services):
    with session_scope(services.engine) as session:
        f.plan_settings(session)
        alice = f.person(session, slack_id="UALICE")
        it = f.team(session, channel_id="CDELIVERY", lead=alice)
        for n in range(40):
            mine = f.initiative(session, owner=alice, team=it, title=f"Initiative {n}")
            f.milestone(session, initiative=mine, due=LONG_AGO, title=f"{HOSTILE} {n}")
    detect(services)
    view = open_home(bot, "UALICE")  # check_home: at most 100 blocks
    text = all_text(view)
    shown = len(milestone_buttons(view))
    assert 0 < shown < 40
    assert "Open alerts about your part of the plan (40)" in text
    assert f"…and {40 - shown} more; `/plan alerts` lists them all." in text
    assert_pings_nobody(view)
