"""A poll's outcome applied to the plan with an explicit `now`: each option's effect, its audit entries, the settled alerts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from bot.alerts import run_detection
from bot.decisions.outcomes import apply_decision
from storage.models import (
    Alert,
    AlertState,
    AuditEntry,
    Decision,
    DecisionAction,
    DecisionOption,
    Dependency,
    DependencyState,
    Initiative,
    KnockOn,
    Milestone,
    MilestoneStatus,
    Person,
    PollOutcome,
)
from tests import factories
from tests.decision_support import DECIDED, DUE, PROPOSED, VOTES, closed_poll, decide, slip_plan


@pytest.fixture
def plan(engine):
    with Session(engine) as session:
        built = slip_plan(session)
        session.commit()
    return built


def _audit(session: Session) -> list[tuple[str, str, str]]:
    return [
        (e.action, e.entity, e.entity_key)
        for e in session.exec(select(AuditEntry).order_by(AuditEntry.id))
    ]


def test_delay_moves_the_milestone_and_what_feeds_it_as_new_request_revisions(engine, plan):
    with Session(engine) as session:
        decision = decide(session, plan.milestone, DecisionOption.DELAY)
        session.commit()
        milestone = session.get(Milestone, plan.milestone)
        training = session.get(Dependency, plan.dependency)
        copy = session.get(Dependency, plan.late_dependency)
        assert milestone is not None and training is not None and copy is not None
        assert (milestone.due, milestone.original_due) == (PROPOSED, DUE)
        assert (decision.new_due, decision.days_moved) == (PROPOSED, 14)
        assert decision.settled_until is None  # the new date is the plan: nothing is held
        # 10 Jan + 14 days; 20 Jan + 14 days would be past the new due date: capped at it.
        assert training.needed_by == date(2027, 1, 24)
        assert copy.needed_by == PROPOSED
        # Each moved ask is a new revision, asked anew (acknowledged goes back to requested).
        assert (training.request_revision, training.state) == (2, DependencyState.REQUESTED)
        assert training.acknowledged_at is None and training.requested_at is None
        assert _audit(session) == [
            ("move_due", "milestone", "beta"),
            ("move_needed_by", "dependency", "training"),
            ("move_needed_by", "dependency", "copy"),
            ("decide", "decision", "beta"),
        ]
        actors = {e.actor for e in session.exec(select(AuditEntry))}
        assert actors == {f"decision:{decision.poll_id}"}
        # The provider team's lead is asked about both; the milestone's owner about neither.
        knock_ons = session.exec(select(KnockOn).order_by(KnockOn.id)).all()
        cmo = session.exec(select(Person).where(Person.slack_id == "UCMO")).one()
        assert [(k.subject, k.person_id, k.new_date) for k in knock_ons] == [
            (f"dependency:{plan.dependency}", cmo.id, date(2027, 1, 24)),
            (f"dependency:{plan.late_dependency}", cmo.id, PROPOSED),
        ]
        assert decision.votes["counts"] == {"delay": 2, "descope": 1}
        assert decision.slipped_at is not None and decision.decided_at == DECIDED


def test_a_second_application_returns_the_same_decision_and_changes_nothing(engine, plan):
    with Session(engine) as session:
        poll = closed_poll(session, plan.milestone, outcome=DecisionOption.DELAY)
        first = apply_decision(session, poll=poll, option="delay", votes=VOTES, now=DECIDED)
        session.commit()
        entries = len(_audit(session))
        again = apply_decision(
            session, poll=poll, option="delay", votes=VOTES, now=DECIDED + timedelta(hours=1)
        )
        session.commit()
        assert again.id == first.id
        assert len(_audit(session)) == entries
        assert len(session.exec(select(Decision)).all()) == 1
        milestone = session.get(Milestone, plan.milestone)
        assert milestone is not None and milestone.due == PROPOSED  # not moved twice


def test_a_delay_to_a_date_already_past_is_logged_without_moving_anything(engine, plan):
    with Session(engine) as session:
        decision = decide(
            session, plan.milestone, DecisionOption.DELAY, proposed_due=date(2027, 1, 18)
        )
        session.commit()
        milestone = session.get(Milestone, plan.milestone)
        assert milestone is not None and milestone.due == DUE
        assert decision.new_due is None and decision.option == "delay"
        assert _audit(session) == [("decide", "decision", "beta")]


def test_cut_scope_records_the_cut_on_the_milestone_and_keeps_its_date(engine, plan):
    with Session(engine) as session:
        decision = decide(
            session, plan.milestone, DecisionOption.DESCOPE, scope_cut="  Offline mode  "
        )
        session.commit()
        milestone = session.get(Milestone, plan.milestone)
        assert milestone is not None
        assert (milestone.status, milestone.due, milestone.scope_note) == (
            MilestoneStatus.OPEN,
            DUE,
            "Offline mode",
        )
        assert decision.scope_cut == "Offline mode"
        assert decision.settled_until == date(2027, 2, 3)  # 20 Jan (New York) + 14 days
        assert _audit(session) == [
            ("cut_scope", "milestone", "beta"),
            ("decide", "decision", "beta"),
        ]


def test_cut_scope_without_a_framed_cut_says_the_owner_defines_it(engine, plan):
    with Session(engine) as session:
        decision = decide(session, plan.milestone, DecisionOption.DESCOPE, scope_cut=None)
        session.commit()
        milestone = session.get(Milestone, plan.milestone)
        assert milestone is not None and milestone.scope_note == "to be defined by the owner"
        assert decision.scope_cut == "to be defined by the owner"


def test_add_resources_gives_the_objective_owner_an_action_due_a_week_later(engine, plan):
    with Session(engine) as session:
        decision = decide(session, plan.milestone, DecisionOption.ADD_RESOURCES, resources=None)
        session.commit()
        action = session.exec(select(DecisionAction)).one()
        coo = session.exec(select(Person).where(Person.slack_id == "UCOO")).one()
        assert action.owner_id == coo.id  # the objective's owner
        assert action.due == date(2027, 1, 27) and action.reminded_at is None
        assert action.what.startswith("Find and assign the extra people or budget")
        assert decision.resources == action.what and decision.settled_until == action.due
        milestone = session.get(Milestone, plan.milestone)
        assert milestone is not None and milestone.due == DUE


def test_add_resources_without_an_objective_owner_goes_to_the_initiative_owner(engine, plan):
    with Session(engine) as session:
        initiative = session.get(Initiative, plan.initiative)
        assert initiative is not None
        initiative.objective_id = None
        session.add(initiative)
        session.flush()
        decide(session, plan.milestone, DecisionOption.ADD_RESOURCES, resources="Two testers")
        session.commit()
        action = session.exec(select(DecisionAction)).one()
        assert action.owner_id == initiative.owner_id and action.what == "Two testers"


@pytest.mark.parametrize("outcome", [PollOutcome.UNDECIDED, PollOutcome.WITHDRAWN])
def test_undecided_and_withdrawn_log_the_decision_and_change_no_plan_item(engine, plan, outcome):
    with Session(engine) as session:
        decision = decide(session, plan.milestone, outcome)
        session.commit()
        assert decision.option == outcome and decision.settled_until is None
        milestone = session.get(Milestone, plan.milestone)
        assert milestone is not None and (milestone.due, milestone.scope_note) == (DUE, None)
        assert _audit(session) == [("decide", "decision", "beta")]
        assert session.exec(select(KnockOn)).all() == []


def test_an_unknown_option_is_refused_before_anything_is_written(engine, plan):
    with Session(engine) as session:
        poll = closed_poll(session, plan.milestone, outcome="delay")
        with pytest.raises(ValueError):
            apply_decision(session, poll=poll, option="toss_a_coin", votes={}, now=DECIDED)
        assert session.exec(select(Decision)).all() == []


# --- settled: accepted risk, cut scope and resources hold missed and at-risk for a while --------------


def _missed(services) -> list[Alert]:
    with Session(services.engine) as session:
        return list(
            session.exec(select(Alert).where(Alert.kind == "milestone_missed").order_by(Alert.id))
        )


def test_accepting_the_risk_resolves_the_missed_alert_and_raises_it_again_after_two_weeks(
    services, standin, plan
):
    run_detection(services, DECIDED - timedelta(days=1))
    [raised] = _missed(services)
    assert raised.state == AlertState.OPEN
    with Session(services.engine) as session:
        decision = decide(session, plan.milestone, DecisionOption.ACCEPT_RISK)
        session.commit()
        assert decision.risk_accepted_until == decision.settled_until == date(2027, 2, 3)

    run_detection(services, DECIDED)
    [resolved] = _missed(services)
    assert resolved.state == AlertState.RESOLVED
    # Through the last accepted day (3 Feb in New York), nothing is raised again.
    run_detection(services, DECIDED + timedelta(days=14))
    assert [a.state for a in _missed(services)] == [AlertState.RESOLVED]
    # The day after, the milestone is still missed: a new alert.
    run_detection(services, DECIDED + timedelta(days=15))
    again = _missed(services)
    assert [a.state for a in again] == [AlertState.RESOLVED, AlertState.OPEN]
    assert again[1].id != raised.id


def test_resources_settle_a_missed_milestone_until_the_actions_date(services, standin, plan):
    run_detection(services, DECIDED - timedelta(days=1))
    with Session(services.engine) as session:
        decide(session, plan.milestone, DecisionOption.ADD_RESOURCES)
        session.commit()
    run_detection(services, DECIDED + timedelta(days=7))  # 27 Jan, the action's date
    assert [a.state for a in _missed(services)] == [AlertState.RESOLVED]
    run_detection(services, DECIDED + timedelta(days=8))
    assert [a.state for a in _missed(services)] == [AlertState.RESOLVED, AlertState.OPEN]


def test_a_settled_milestone_is_not_at_risk_either(services, standin, plan):
    with Session(services.engine) as session:
        future = factories.milestone(
            session,
            initiative=session.get(Initiative, plan.initiative),
            due=date(2027, 3, 1),
            key="later-risky",
            expected_due=date(2027, 3, 20),  # the owner expects it late: at risk
        )
        session.commit()
        future_id = future.id
    run_detection(services, DECIDED)
    with Session(services.engine) as session:
        at_risk = session.exec(select(Alert).where(Alert.kind == "milestone_at_risk")).all()
        assert [a.subject for a in at_risk] == [f"milestone:{future_id}"]
        assert future_id is not None
        decide(session, future_id, DecisionOption.DESCOPE, scope_cut="Reports")
        session.commit()
    run_detection(services, DECIDED)
    with Session(services.engine) as session:
        at_risk = session.exec(select(Alert).where(Alert.kind == "milestone_at_risk")).all()
        assert [a.state for a in at_risk] == [AlertState.RESOLVED]
