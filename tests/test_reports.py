"""Report queries and answers, against a real database (SQLite, or PostgreSQL when asked)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session

from bot import reports as r
from bot.kpis import Health
from storage import reports as q
from storage.models import (
    Decision,
    DecisionPoll,
    PulseAnswer,
    PulseRequest,
    Vote,
)
from storage.people import person_by_slack_id
from tests import factories as f

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def pulse(
    session, initiative, *, status=None, confidence=None, blockers=None, at=NOW, state="sent"
):
    """A pulse request for the initiative's owner, answered when `status` is given."""
    request = PulseRequest(
        initiative_id=initiative.id,
        owner_id=initiative.owner_id,
        period=at.isoformat(),
        due_at=at,
        state="answered" if status else state,
        sent_at=at,
        answered_at=at if status else None,
        channel_id="DALICE",
        message_ts="1.0",
    )
    session.add(request)
    session.flush()
    if status:
        session.add(
            PulseAnswer(
                pulse_request_id=request.id,
                status=status,
                confidence=confidence,
                blockers=blockers,
                answered_at=at,
            )
        )
        session.flush()
    return request


class StatementCounter:
    def __init__(self, engine):
        self.engine = engine
        self.count = 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args):
        self.count += 1


@pytest.fixture
def plan(engine):
    """Northwind's portal plan, in miniature."""
    with Session(engine) as session:
        f.plan_settings(session, timezone="America/New_York")
        alice = f.person(session, slack_id="UALICE", name="Alice")
        bob = f.person(session, slack_id="UBOB", name="Bob")
        cio = f.person(session, slack_id="UCIO", name="CIO", is_leader=True)
        it = f.team(session, key="it", name="IT Delivery", lead=cio, members=[alice])
        marketing = f.team(session, key="marketing", name="Marketing", lead=bob)
        goal = f.objective(session, key="digital-portal", title="Self-service portal")
        adoption = f.kpi(
            session,
            objective=goal,
            key="portal-adoption",
            name="Requests via portal",
            baseline=8,
            target=40,
            unit="%",
        )
        csat = f.kpi(session, objective=goal, key="csat", name="Customer satisfaction")
        f.kpi(session, objective=goal, key="old-kpi", name="Retired portal metric", archived=True)
        for week, value in enumerate([8, 9, 10, 12, 13]):
            f.reading(
                session, kpi=adoption, value=value, as_of=date(2026, 10, 1) + timedelta(weeks=week)
            )
        # A correction on the same day: the newer row wins.
        f.reading(session, kpi=adoption, value=14, as_of=date(2026, 10, 29))
        beta = f.initiative(
            session,
            owner=alice,
            team=it,
            objective=goal,
            kpis=[adoption],
            key="portal-beta",
            title="Customer portal beta",
        )
        launch = f.milestone(session, initiative=beta, key="beta-launch", due=date(2027, 2, 1))
        f.milestone(session, initiative=beta, key="beta-ready", due=date(2026, 11, 20))
        f.milestone(
            session, initiative=beta, key="beta-design", due=date(2026, 10, 1), status="done"
        )
        f.dependency(
            session,
            initiative=beta,
            provider=marketing,
            key="support-training",
            need="Support staff trained",
            needed_by=date(2027, 1, 25),
            milestone=launch,
        )
        f.dependency(
            session,
            initiative=beta,
            provider=marketing,
            key="done-dep",
            need="Logo",
            needed_by=date(2026, 11, 1),
            state="delivered",
        )
        campaign = f.initiative(session, owner=bob, team=marketing, key="campaign", kpis=[csat])
        f.dependency(
            session,
            initiative=campaign,
            provider=it,
            key="landing-page",
            need="Landing page",
            needed_by=date(2026, 12, 15),
            state="blocked",
        )
        pulse(session, beta, status="at_risk", confidence=2, at=NOW - timedelta(days=14))
        pulse(
            session,
            beta,
            status="on_track",
            confidence=4,
            blockers="waiting",
            at=NOW - timedelta(days=7),
        )
        pulse(session, beta, at=NOW - timedelta(hours=3))  # sent, not answered yet
        session.commit()
        return {"engine": engine}


def test_recent_readings_are_the_newest_per_kpi_oldest_first_with_corrections_winning(engine, plan):
    with Session(engine) as session:
        adoption = q.find_kpis(session=session, query="portal-adoption", limit=5).rows[0]
        readings = q.recent_readings(session=session, kpi_ids=[adoption.id], per_kpi=3)[adoption.id]
    assert [r.value for r in readings] == [10, 12, 14]
    assert readings[-1].as_of == date(2026, 10, 29)


def test_scorecard_skips_archived_kpis_and_costs_two_queries_however_many_kpis(engine, plan):
    with Session(engine) as session:
        goal = f.objective(session, key="zz-more", title="More")
        for n in range(200):
            k = f.kpi(session, objective=goal, key=f"extra-{n:03d}")
            f.reading(session, kpi=k, value=n, as_of=date(2026, 11, 1))
        session.commit()
    with Session(engine) as session, StatementCounter(engine) as counter:
        rows = q.scorecard_rows(session=session, history=12)
    assert counter.count == 2
    keys = [row.kpi.key for row in rows]
    assert "old-kpi" not in keys and len(keys) == 202
    assert keys[:2] == ["csat", "portal-adoption"]  # grouped by objective key, then KPI key


def _many_kpis(engine, *, off: int, at_risk: int, on: int) -> None:
    """Extra KPIs under one objective; on 2026-11-26 their line expects 15.4 (0 → 100 in a year)."""
    values = [-20.0] * off + [0.0] * at_risk + [20.0] * on  # 35, 15 and -5 points behind
    with Session(engine) as session:
        goal = f.objective(session, key="zz-more", title="More")
        for n, value in enumerate(values):
            k = f.kpi(session, objective=goal, key=f"extra-{n:03d}")
            f.reading(session, kpi=k, value=value, as_of=date(2026, 11, 20))
        session.commit()


def test_a_large_plans_scorecard_counts_every_kpi_and_lists_those_most_in_need_first(engine, plan):
    _many_kpis(engine, off=3, at_risk=2, on=40)
    with Session(engine) as session:
        card = r.kpi_scorecard(session, NOW)
    listed = [k for group in card.groups for k in group.kpis]
    assert card.kpi_count == 47 and card.listed == len(listed) == r.SCORECARD_LINES
    assert card.counts == {
        Health.OFF_TRACK: 3,
        Health.AT_RISK: 2,
        Health.NO_DATA: 1,  # csat
        Health.ON_TRACK: 41,  # the 40 and portal-adoption
    }
    healths = [k.health for k in listed]
    assert healths.count(Health.OFF_TRACK) == 3 and healths.count(Health.AT_RISK) == 2
    assert "csat" in [k.key for k in listed]
    # Listed in the plan's order (objective, then key), not in the order they were picked.
    keys = [(group.key, k.key) for group in card.groups for k in group.kpis]
    assert keys == sorted(keys)
    assert [k.key for k in listed][-3:] == ["extra-020", "extra-021", "extra-022"]
    # The newest reading of the newest day is what the health is judged on (13 was corrected).
    with Session(engine) as session:
        newest = {k.key: k.latest for k in q.scorecard_kpis(session=session)}
    assert newest["portal-adoption"] == q.Reading(value=14, as_of=date(2026, 10, 29))
    assert newest["csat"] is None


def test_the_scorecards_queries_do_not_grow_with_the_kpis(engine, plan):
    def statements() -> int:
        with Session(engine) as session, StatementCounter(engine) as counter:
            r.kpi_scorecard(session, NOW)
        return counter.count

    few = statements()
    _many_kpis(engine, off=10, at_risk=10, on=200)
    assert statements() == few <= 4


def test_find_kpis_exact_key_first_then_key_or_name_contains(engine, plan):
    with Session(engine) as session:
        assert [k.key for k in q.find_kpis(session=session, query="CSAT", limit=5).rows] == ["csat"]
        portal = q.find_kpis(session=session, query="portal", limit=5)
        assert [k.key for k in portal.rows] == ["portal-adoption"]  # archived one excluded
        several = q.find_kpis(session=session, query="a", limit=1)
        assert len(several.rows) == 1 and several.total == 2
        # LIKE wildcards in the query are literal.
        assert q.find_kpis(session=session, query="%", limit=5).total == 0
        assert q.find_kpis(session=session, query="_", limit=5).total == 0


def test_kpi_answer_picks_card_choices_or_did_you_mean(engine, plan):
    with Session(engine) as session:
        assert isinstance(r.kpi_answer(session, "", NOW), r.KpiScorecard)
        card = r.kpi_answer(session, "portal", NOW)
        assert isinstance(card, r.KpiCard)
        assert card.kpi.latest is not None and card.kpi.latest.value == 14
        assert [i.key for i in card.initiatives] == ["portal-beta"]
        assert card.initiatives[0].pulse is not None
        assert card.initiatives[0].pulse.status == "on_track"
        choices = r.kpi_answer(session, "a", NOW)
        assert isinstance(choices, r.KpiChoices) and choices.total == 2
        nothing = r.kpi_answer(session, "portal-adopton", NOW)
        assert isinstance(nothing, r.KpiNoMatch)
        assert nothing.suggestions[0][0] == "portal-adoption"


def test_kpi_health_on_the_scorecard_uses_todays_expected_value(engine, plan):
    with Session(engine) as session:
        card = r.kpi_scorecard(session, NOW)
    lines = {k.key: k for group in card.groups for k in group.kpis}
    adoption = lines["portal-adoption"]
    # 8 → 40 from 2026-10-01 to 2027-09-30: 56 of 364 days gone, 12.92 expected; 14 is ahead.
    assert adoption.expected == pytest.approx(8 + 32 * 56 / 364)
    assert adoption.health is Health.ON_TRACK
    assert adoption.age_days == 28
    assert adoption.spark == "▁▂▃▆█"  # 8 9 10 12 14: the 13 was corrected
    assert lines["csat"].health is Health.NO_DATA


def test_last_pulses_are_the_newest_answer_per_initiative_in_one_query(engine, plan):
    with Session(engine) as session:
        beta = q.initiative_by_key(session=session, key="portal-beta")
        campaign = q.initiative_by_key(session=session, key="campaign")
        with StatementCounter(engine) as counter:
            pulses = q.last_pulses(session=session, initiative_ids=[beta.id, campaign.id])
    assert counter.count == 1
    assert pulses[beta.id].status == "on_track" and pulses[beta.id].confidence == 4
    assert campaign.id not in pulses


def test_initiative_card_shows_missed_milestones_and_open_and_closed_dependencies(engine, plan):
    with Session(engine) as session:
        answer = r.plan_answer(session, "PORTAL-BETA", "UNOBODY", NOW)
    assert isinstance(answer, r.InitiativeCard)
    assert answer.owner_slack_id == "UALICE" and answer.team_lead_slack_id == "UCIO"
    assert [m.key for m in answer.milestones] == ["beta-design", "beta-ready", "beta-launch"]
    assert [m.missed for m in answer.milestones] == [False, True, False]
    assert answer.health is Health.OFF_TRACK  # beta-ready was due 2026-11-20 and is not done
    assert answer.pulse is not None and answer.pulse.blockers == "waiting"
    assert {d.key: d.state for d in answer.dependencies} == {
        "done-dep": "delivered",
        "support-training": "requested",
    }


def test_health_follows_the_pulse_when_no_milestone_is_missed(engine, plan):
    with Session(engine) as session:
        # Before beta-ready's day has ended in New York: health is the owner's "on track".
        answer = r.plan_answer(
            session, "portal-beta", "UALICE", datetime(2026, 11, 21, 4, tzinfo=UTC)
        )
    assert isinstance(answer, r.InitiativeCard)
    assert answer.health is Health.ON_TRACK


def test_mine_lists_what_i_own_and_says_so_when_i_am_not_in_the_plan(engine, plan):
    with Session(engine) as session:
        mine = r.plan_answer(session, "mine", "UALICE", NOW)
        stranger = r.plan_answer(session, "mine", "USTRANGER", NOW)
    assert isinstance(mine, r.MyInitiatives) and mine.total == 1
    assert mine.initiatives[0].key == "portal-beta"
    assert mine.initiatives[0].health is Health.OFF_TRACK
    assert mine.initiatives[0].next_milestone is not None
    assert mine.initiatives[0].next_milestone.key == "beta-ready"
    assert isinstance(stranger, r.MyInitiatives) and not stranger.in_plan


def test_deps_splits_what_my_teams_owe_from_what_my_initiatives_wait_for(engine, plan):
    with Session(engine) as session:
        alice = r.plan_answer(session, "deps", "UALICE", NOW)  # member of IT, owns portal-beta
        bob = r.plan_answer(session, "deps", "UBOB", NOW)  # leads Marketing, owns campaign
    assert isinstance(alice, r.MyDependencies) and isinstance(bob, r.MyDependencies)
    assert [d.key for d in alice.to_provide.rows] == ["landing-page"]
    assert [d.key for d in alice.waiting_for.rows] == ["support-training"]  # delivered one closed
    assert [d.key for d in bob.to_provide.rows] == ["support-training"]
    assert [d.key for d in bob.waiting_for.rows] == ["landing-page"]


def test_decisions_say_none_until_the_log_has_rows(engine, plan):
    with Session(engine) as session:
        empty = r.plan_answer(session, "decisions", "UALICE", NOW)
        assert isinstance(empty, r.DecisionLog) and empty.total == 0
        milestone = q.initiative_card(
            session=session, initiative=q.initiative_by_key(session=session, key="portal-beta")
        ).milestones[1]
        session.add(
            Decision(
                milestone_id=milestone.id,
                option="delay",
                new_due=date(2026, 12, 4),
                summary="Two weeks more",
                decided_at=NOW,
            )
        )
        session.commit()
        log = r.plan_answer(session, "decisions", "UALICE", NOW)
    assert isinstance(log, r.DecisionLog) and log.total == 1
    assert log.decisions[0].milestone_key == "beta-ready" and log.decisions[0].option == "delay"


def test_unknown_words_get_help_with_close_initiative_keys(engine, plan):
    with Session(engine) as session:
        assert r.plan_answer(session, "", "UALICE", NOW) == r.PlanHelp()
        assert r.plan_answer(session, "help", "UALICE", NOW) == r.PlanHelp()
        typo = r.plan_answer(session, "portal-bta", "UALICE", NOW)
    assert typo == r.PlanHelp(unknown="portal-bta", suggestions=["portal-beta"])


def test_home_data_for_an_owner_a_leader_and_a_stranger(engine, plan):
    with Session(engine) as session:
        beta = q.initiative_by_key(session=session, key="portal-beta")
        ready = q.initiative_card(session=session, initiative=beta).milestones[1]
        poll = DecisionPoll(
            milestone_id=ready.id,
            open_key=f"milestone:{ready.id}",
            opened_at=NOW,
            deadline=NOW + timedelta(days=2),
            channel_id="CDECISIONS",
            message_ts="1.1",
        )
        closed = DecisionPoll(
            milestone_id=ready.id,
            state="closed",
            opened_at=NOW - timedelta(days=9),
            deadline=NOW - timedelta(days=7),
        )
        session.add_all([poll, closed])
        session.flush()
        cio = person_by_slack_id(session=session, slack_id="UCIO")
        session.add(Vote(poll_id=poll.id, voter_id=cio.id, option="delay", voted_at=NOW))
        session.commit()
        alice = r.home_data(session, "UALICE", NOW)
        leader = r.home_data(session, "UCIO", NOW)
        stranger = r.home_data(session, "USTRANGER", NOW)
    assert alice.in_plan and not alice.is_leader
    assert [i.key for i in alice.initiatives.initiatives] == ["portal-beta"]
    assert [p.initiative_key for p in alice.pulses.rows] == ["portal-beta"]  # the unanswered one
    assert [d.key for d in alice.dependencies.rows] == ["landing-page"]
    assert alice.polls.total == 0  # not a leader: no polls to vote in
    assert leader.is_leader and leader.polls.total == 1 and leader.polls.rows[0].voted
    assert [d.key for d in leader.dependencies.rows] == ["landing-page"]  # leads IT
    assert not stranger.in_plan and stranger.initiatives.total == 0


def test_a_kpi_card_costs_the_same_queries_with_fifty_linked_initiatives(engine, plan):
    with Session(engine) as session:
        adoption = q.find_kpis(session=session, query="portal-adoption", limit=1).rows[0]
        team = f.team(session)
        for _ in range(50):
            f.initiative(session, owner=f.person(session), team=team, kpis=[adoption])
        session.commit()
    with Session(engine) as session, StatementCounter(engine) as counter:
        card = r.kpi_answer(session, "portal-adoption", NOW)
    assert isinstance(card, r.KpiCard) and len(card.initiatives) == 51
    assert all(i.owner_slack_id for i in card.initiatives)
    assert counter.count <= 8


def test_a_plan_card_costs_the_same_queries_with_two_hundred_milestones(engine, plan):
    with Session(engine) as session:
        beta = q.initiative_by_key(session=session, key="portal-beta")
        for n in range(200):
            f.milestone(session, initiative=beta, due=date(2027, 3, 1) + timedelta(days=n))
        session.commit()
    with Session(engine) as session, StatementCounter(engine) as counter:
        card = r.plan_answer(session, "portal-beta", "UALICE", NOW)
    assert isinstance(card, r.InitiativeCard) and len(card.milestones) == 203
    assert counter.count <= 11


def test_a_whole_name_beats_names_that_contain_it(engine, plan):
    with Session(engine) as session:
        goal = f.objective(session)
        f.kpi(session, objective=goal, key="csat-mobile", name="Customer satisfaction (mobile)")
        session.commit()
        assert [
            k.key for k in q.find_kpis(session=session, query="customer satisfaction", limit=5).rows
        ] == ["csat"]
        assert q.find_kpis(session=session, query="satisfaction", limit=5).total == 2


def test_dependencies_of_archived_initiatives_are_nobodys_to_act_on(engine, plan):
    with Session(engine) as session:
        campaign = q.initiative_by_key(session=session, key="campaign")
        campaign.archived = True
        session.add(campaign)
        session.commit()
        alice = r.plan_answer(session, "deps", "UALICE", NOW)
    assert isinstance(alice, r.MyDependencies)
    assert alice.to_provide.total == 0 and alice.to_provide.rows == []
