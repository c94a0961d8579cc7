"""/kpi through signed HTTP requests against the running bot and the Slack stand-in."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session

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
    return ask_command(bot, "/kpi", text, user)


def test_scorecard_groups_kpis_by_objective_with_health_trend_and_age(bot, plan):
    message = ask(bot)
    text = all_text(message)
    assert "Move 40% of requests to the portal" in text
    assert "Requests via portal" in text and "`portal-adoption`" in text
    assert "of 40%" in text and "expected" in text
    assert "▁" in text and "█" in text  # the sparkline
    assert "days old" in text
    assert message["blocks"][-1]["elements"][0]["action_id"] == "query_share"
    # Answered in the ack: Slack got no Web API call for it.
    bot.wait_idle()
    assert bot.standin.calls("chat.postMessage") == []


def test_one_match_shows_the_kpi_card_with_linked_initiatives_and_their_pulse(bot, plan):
    message = ask(bot, "via portal")
    text = all_text(message)
    assert "*Requests via portal*" in text
    assert "Readings, newest first" in text and "14%" in text
    assert "Expected today" in text and "higher is better" in text
    assert "`portal-beta`" in text and "last pulse: at risk" in text and "3/5 confident" in text
    assert HOSTILE_ESCAPED in text
    assert_pings_nobody(message)


def test_several_matches_list_the_choices(bot, plan, services):
    with Session(services.engine) as session:
        goal = f.objective(session, key="ops", title="Operations")
        f.kpi(session, objective=goal, key="portal-uptime", name="Portal uptime")
        session.commit()
    text = all_text(ask(bot, "portal"))
    assert "2 KPIs match" in text
    assert "`portal-adoption`" in text and "`portal-uptime`" in text


def test_no_match_suggests_close_keys(bot, plan):
    text = all_text(ask(bot, "portal-adopshun"))
    assert "No KPI matches" in text and "Did you mean" in text and "`portal-adoption`" in text
    text = all_text(ask(bot, "zzzz"))
    assert "No KPI matches" in text and "whole scorecard" in text


def test_query_text_is_escaped_too(bot, plan):
    message = ask(bot, "<!channel> & <@U123>")
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in all_text(message)
    assert_pings_nobody(message)


def test_hundreds_of_kpis_fit_in_one_message_with_and_n_more(bot, services):
    with Session(services.engine) as session:
        f.plan_settings(session)
        for o in range(12):
            goal = f.objective(
                session, key=f"objective-{o:02d}", title=f"Objective {o} " + "&" * 80
            )
            for n in range(40):
                k = f.kpi(
                    session,
                    objective=goal,
                    key=f"kpi-{o:02d}-{n:02d}",
                    name=f"A long KPI name number {n} with <angle> & ampersand " + "x" * 60,
                )
                f.reading(session, kpi=k, value=n, as_of=date(2026, 11, 1))
        session.commit()
    message = ask(bot)
    assert "…and 455 more KPIs" in all_text(message)  # 480 counted by health, 25 listed
    assert "Listed below: 25 of them, those most in need of attention first" in all_text(message)
    assert_pings_nobody(message)


def test_an_empty_plan_says_so(bot):
    text = all_text(ask(bot))
    assert "no KPIs yet" in text


def test_a_plan_with_an_unknown_timezone_still_answers(bot, plan, services):
    # The same fallback as pulses (bot/timezones.py): a bad zone never breaks /kpi or /plan.
    with Session(services.engine) as session:
        f.plan_settings(session, timezone="Mars/Olympus_Mons")
        session.commit()
    assert "Requests via portal" in all_text(ask(bot))
    assert "portal-beta" in all_text(ask_command(bot, "/plan", "portal-beta", "UALICE"))
