"""/plan through signed HTTP requests against the running bot and the Slack stand-in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from storage.models import Decision, Milestone
from tests import factories as f
from tests.query_fixtures import (
    HOSTILE,
    HOSTILE_ESCAPED,
    all_text,
    ask_command,
    assert_pings_nobody,
    build_portal_plan,
)


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return build_portal_plan(session, title=HOSTILE)


def ask(bot, text="", user="UALICE"):
    return ask_command(bot, "/plan", text, user)


def test_initiative_card(bot, plan):
    message = ask(bot, "portal-beta")
    text = all_text(message)
    assert HOSTILE_ESCAPED in text
    assert "<@UALICE>" in text and "IT Delivery" in text and "(lead <@UCIO>)" in text
    assert "last pulse" in text.lower() and "at risk, 3/5 confident" in text
    assert "Waiting for &lt;!here&gt; &amp; legal" in text  # the owner's blockers, escaped
    # Milestones in due order with <!date^…> so each reader sees their own timezone.
    assert text.index("Feature-complete") < text.index("Beta launch")
    assert "<!date^" in text and "|2027-01-15>" in text
    assert "Support staff trained for the beta" in text and "from Marketing" in text
    assert "requested, not acknowledged" in text
    assert message["blocks"][-1]["elements"][0]["action_id"] == "query_share"
    assert_pings_nobody(message)


def test_mine_for_an_owner_and_for_someone_not_in_the_plan(bot, plan):
    text = all_text(ask(bot, "mine"))
    assert "You own 1 initiative" in text and "`portal-beta`" in text
    text = all_text(ask(bot, "mine", user="UCMO"))  # in Slack, not in the plan
    assert "You are not named in the plan" in text


def test_deps_for_the_provider_team_and_the_requester(bot, plan):
    bob = all_text(ask(bot, "deps", user="UBOB"))  # leads Marketing
    assert "Your teams are asked for 1 open dependency" in bob
    assert "Support staff trained for the beta" in bob
    alice = all_text(ask(bot, "deps"))
    assert "Your initiatives wait for 1 open dependency" in alice
    assert "Your teams are asked for 0 open dependencies" in alice


def test_decisions_none_yet_then_the_log(bot, plan, services):
    assert "No decisions exist yet" in all_text(ask(bot, "decisions"))
    with Session(services.engine) as session:
        ready = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        session.add(
            Decision(
                milestone_id=ready.id,
                option="descope",
                scope_cut="No SSO in the beta & no <!channel>",
                decided_at=datetime(2026, 11, 20, 15, tzinfo=UTC),
            )
        )
        session.commit()
    message = ask(bot, "decisions")
    text = all_text(message)
    assert "1 decision" in text and "cut scope" in text and "No SSO in the beta &amp;" in text
    assert_pings_nobody(message)


@pytest.mark.parametrize("words", ["", "help", "HELP", "frobnicate"])
def test_help_and_unknown_subcommands(bot, plan, words):
    text = all_text(ask(bot, words))
    assert "`/plan mine`" in text and "`/plan deps`" in text and "`/plan decisions`" in text
    assert "`/plan alerts`" in text
    if words == "frobnicate":
        assert "is not an initiative key" in text


def test_a_typo_in_a_key_suggests_the_key(bot, plan):
    assert "Did you mean `portal-beta`" in all_text(ask(bot, "portal-bta"))


def test_two_hundred_milestones_fit_with_and_n_more(bot, plan, services):
    with Session(services.engine) as session:
        f.plan_settings(session)
        owner = f.person(session)
        it = f.team(session)
        big = f.initiative(session, owner=owner, team=it, key="big", title=HOSTILE)
        for n in range(200):
            f.milestone(
                session,
                initiative=big,
                title=f"Milestone {n} " + "<&>" * 30,
                due=date(2026, 6, 1) + timedelta(days=n),
            )
        others = [f.team(session) for _ in range(3)]
        for n in range(60):
            f.dependency(
                session,
                initiative=big,
                provider=others[n % 3],
                needed_by=date(2027, 1, 1),
                need="Need " + "&" * 150,
            )
        session.commit()
    message = ask(bot, "big")
    text = all_text(message)
    assert "more milestones" in text and "more dependencies" in text
    assert "*missed*" in text  # the June 2026 ones
    assert_pings_nobody(message)
