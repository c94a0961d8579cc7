"""The milestone rules with an explicit `now`: who may, what each change writes, each change once."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, select

from bot.errors import NotAllowed, NotFound, UserError
from bot.milestones.rules import (
    SCOPE_CUT_MAX,
    MilestoneProblem,
    apply_descope,
    apply_move_due,
    check_can_act,
    descope,
    mark_done,
    move_due,
)
from storage.db import session_scope
from storage.models import AuditEntry, Initiative, Milestone, MilestoneStatus
from templates.ids import MilestoneIds
from tests import factories

# 22:00 on Monday 23 November in New York (the plan's timezone), already Tuesday in UTC.
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
NY_TODAY = date(2026, 11, 23)
DUE = date(2027, 1, 15)


@pytest.fixture
def plan(engine):
    """Alice owns the initiative, Chiyo leads its team, Dana is an admin, Bob is nobody here."""
    with session_scope(engine) as session:
        factories.plan_settings(session, timezone="America/New_York")
        alice = factories.person(session, slack_id="UALICE")
        chiyo = factories.person(session, slack_id="UCIO")
        factories.person(session, slack_id="UCOO", is_admin=True)
        factories.person(session, slack_id="UBOB")
        team = factories.team(session, lead=chiyo, members=[alice])
        initiative = factories.initiative(session, owner=alice, team=team, title="Portal beta")
        ready = factories.milestone(
            session, initiative=initiative, due=DUE, key="beta-ready", title="Beta ready"
        )
        return {"initiative": initiative.id, "ready": ready.id}


def stored(engine, milestone_id: int) -> Milestone:
    with Session(engine) as session:
        milestone = session.get(Milestone, milestone_id)
        assert milestone is not None
        return milestone


def entries(engine) -> list[AuditEntry]:
    with Session(engine) as session:
        statement = select(AuditEntry).where(AuditEntry.entity == "milestone")
        return list(session.exec(statement.order_by(AuditEntry.id)))


def codes(error: UserError) -> list[MilestoneProblem]:
    return [p.code for p in error.problems]  # type: ignore[misc]


@pytest.mark.parametrize("person", ["UALICE", "UCIO", "UCOO"])
def test_the_owner_the_team_lead_and_an_admin_may_act(engine, plan, person):
    with session_scope(engine) as session:
        assert check_can_act(session, milestone_id=plan["ready"], person=person).key == "beta-ready"
        assert mark_done(session, milestone_id=plan["ready"], person=person, now=NOW)
    milestone = stored(engine, plan["ready"])
    assert (milestone.status, milestone.completed_at) == (MilestoneStatus.DONE, NOW)
    [entry] = entries(engine)
    assert (entry.actor, entry.action, entry.entity_key) == (
        f"slack:{person}",
        "mark_done",
        "beta-ready",
    )
    assert entry.before["status"] == "open"
    assert entry.after["status"] == "done" and entry.after["completed_at"] == NOW.isoformat()


@pytest.mark.parametrize("person", ["UBOB", "UNOBODY"])
def test_anyone_else_is_not_allowed_and_nothing_changes(engine, plan, person):
    with session_scope(engine) as session, pytest.raises(NotAllowed) as refused:
        mark_done(session, milestone_id=plan["ready"], person=person, now=NOW)
    [found] = refused.value.problems
    assert found.code == MilestoneProblem.NOT_ALLOWED
    assert dict(found.params) == {"milestone": "Beta ready", "initiative": "Portal beta"}
    assert stored(engine, plan["ready"]).status == MilestoneStatus.OPEN
    assert entries(engine) == []


def test_a_team_without_a_lead_leaves_the_owner_and_admins(engine):
    with session_scope(engine) as session:
        factories.plan_settings(session)
        owner = factories.person(session, slack_id="UALICE")
        team = factories.team(session)
        initiative = factories.initiative(session, owner=owner, team=team)
        milestone_id = factories.milestone(session, initiative=initiative, due=DUE).id
    with session_scope(engine) as session, pytest.raises(NotAllowed):
        check_can_act(session, milestone_id=milestone_id, person="UBOB")


def test_marking_done_twice_changes_it_once(engine, plan):
    later = NOW.replace(hour=5)
    with session_scope(engine) as session:
        assert mark_done(session, milestone_id=plan["ready"], person="UALICE", now=NOW)
    with session_scope(engine) as session:
        assert not mark_done(session, milestone_id=plan["ready"], person="UCIO", now=later)
    assert stored(engine, plan["ready"]).completed_at == NOW
    assert len(entries(engine)) == 1


def test_two_clicks_at_once_mark_it_done_once(engine, plan):
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def press(person: str) -> None:
        barrier.wait()
        with session_scope(engine) as session:
            results.append(mark_done(session, milestone_id=plan["ready"], person=person, now=NOW))

    threads = [threading.Thread(target=press, args=(p,)) for p in ("UALICE", "UCIO")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False, True]
    assert len(entries(engine)) == 1


def test_moving_the_date_keeps_the_original_and_is_audited(engine, plan):
    first, second = date(2027, 2, 1), date(2027, 3, 1)
    with session_scope(engine) as session:
        assert move_due(session, milestone_id=plan["ready"], person="UCIO", new_due=first, now=NOW)
    with session_scope(engine) as session:
        assert move_due(session, milestone_id=plan["ready"], person="UCOO", new_due=second, now=NOW)
    milestone = stored(engine, plan["ready"])
    assert (milestone.due, milestone.original_due, milestone.status) == (second, DUE, "open")
    moved_once, moved_twice = entries(engine)
    assert (moved_once.actor, moved_once.action) == ("slack:UCIO", "move_due")
    assert (moved_once.before["due"], moved_once.after["due"]) == ("2027-01-15", "2027-02-01")
    assert moved_twice.before["due"] == "2027-02-01" and moved_twice.after["due"] == "2027-03-01"
    assert moved_twice.after["original_due"] == "2027-01-15"


@pytest.mark.parametrize(
    ("expected_due", "kept"),
    [
        (date(2027, 1, 20), None),  # before the new date: the new date covers it
        (date(2027, 2, 1), None),  # on it: covered too
        (date(2027, 2, 10), date(2027, 2, 10)),  # still later than the new date: still news
    ],
)
def test_moving_the_date_clears_a_forecast_it_covers(engine, plan, expected_due, kept):
    with session_scope(engine) as session:
        milestone = session.get(Milestone, plan["ready"])
        milestone.expected_due = expected_due
        session.add(milestone)
    with session_scope(engine) as session:
        move_due(
            session, milestone_id=plan["ready"], person="UALICE", new_due=date(2027, 2, 1), now=NOW
        )
    assert stored(engine, plan["ready"]).expected_due == kept
    [entry] = entries(engine)
    assert entry.after["expected_due"] == (kept.isoformat() if kept else None)


def test_today_in_the_plan_timezone_is_allowed_yesterday_is_not(engine, plan):
    """At 03:00 UTC it is still the 23rd in New York: the 23rd is today there, not the past."""
    with session_scope(engine) as session, pytest.raises(UserError) as refused:
        move_due(
            session,
            milestone_id=plan["ready"],
            person="UALICE",
            new_due=date(2026, 11, 22),
            now=NOW,
        )
    [found] = refused.value.problems
    assert found.code == MilestoneProblem.NEW_DATE_IN_PAST
    assert (found.field, found.params["today"]) == (MilestoneIds.NEW_DATE_BLOCK, "2026-11-23")
    with session_scope(engine) as session:
        assert move_due(
            session, milestone_id=plan["ready"], person="UALICE", new_due=NY_TODAY, now=NOW
        )
    assert stored(engine, plan["ready"]).due == NY_TODAY


def test_the_current_date_is_a_mistake_unless_the_form_saw_another(engine, plan):
    with session_scope(engine) as session, pytest.raises(UserError) as refused:
        move_due(session, milestone_id=plan["ready"], person="UALICE", new_due=DUE, now=NOW)
    assert codes(refused.value) == [MilestoneProblem.NEW_DATE_SAME]
    # The form showed the 15th and asked for February: the milestone already stands there.
    new = date(2027, 2, 1)
    for expected in (True, False):
        with session_scope(engine) as session:
            changed = move_due(
                session,
                milestone_id=plan["ready"],
                person="UALICE",
                new_due=new,
                now=NOW,
                seen_due=DUE,
            )
        assert changed is expected
    assert len(entries(engine)) == 1


def test_descoping_records_what_is_cut_once(engine, plan):
    cut = "  Offline mode moves to the next release.  "
    with session_scope(engine) as session:
        assert descope(session, milestone_id=plan["ready"], person="UALICE", scope_cut=cut, now=NOW)
    with session_scope(engine) as session:
        assert not descope(
            session, milestone_id=plan["ready"], person="UCIO", scope_cut=cut, now=NOW
        )
    milestone = stored(engine, plan["ready"])
    assert milestone.status == MilestoneStatus.DESCOPED
    assert milestone.scope_note == "Offline mode moves to the next release."
    [entry] = entries(engine)
    assert (entry.action, entry.before["scope_note"], entry.after["status"]) == (
        "descope",
        None,
        "descoped",
    )
    with session_scope(engine) as session, pytest.raises(UserError) as refused:
        descope(session, milestone_id=plan["ready"], person="UALICE", scope_cut="More", now=NOW)
    assert codes(refused.value) == [MilestoneProblem.ALREADY_DESCOPED]


@pytest.mark.parametrize(
    ("cut", "code"),
    [
        ("", MilestoneProblem.SCOPE_CUT_EMPTY),
        (" \n\t ", MilestoneProblem.SCOPE_CUT_EMPTY),
        ("x" * (SCOPE_CUT_MAX + 1), MilestoneProblem.SCOPE_CUT_TOO_LONG),
    ],
)
def test_a_scope_cut_must_say_something_briefly(engine, plan, cut, code):
    with session_scope(engine) as session, pytest.raises(UserError) as refused:
        descope(session, milestone_id=plan["ready"], person="UALICE", scope_cut=cut, now=NOW)
    [found] = refused.value.problems
    assert (found.code, found.field) == (code, MilestoneIds.SCOPE_CUT_BLOCK)
    assert stored(engine, plan["ready"]).status == MilestoneStatus.OPEN


def test_exactly_the_maximum_is_accepted(engine, plan):
    with session_scope(engine) as session:
        assert descope(
            session,
            milestone_id=plan["ready"],
            person="UALICE",
            scope_cut="x" * SCOPE_CUT_MAX,
            now=NOW,
        )


def test_a_closed_milestone_cannot_be_moved_or_descoped(engine, plan):
    with session_scope(engine) as session:
        mark_done(session, milestone_id=plan["ready"], person="UALICE", now=NOW)
    with session_scope(engine) as session, pytest.raises(UserError) as moving:
        move_due(
            session,
            milestone_id=plan["ready"],
            person="UALICE",
            new_due=date(2027, 2, 1),
            now=NOW,
        )
    with session_scope(engine) as session, pytest.raises(UserError) as cutting:
        descope(session, milestone_id=plan["ready"], person="UALICE", scope_cut="All", now=NOW)
    assert codes(moving.value) == codes(cutting.value) == [MilestoneProblem.ALREADY_DONE]
    assert stored(engine, plan["ready"]).due == DUE
    assert len(entries(engine)) == 1


def test_a_descoped_milestone_cannot_be_marked_done(engine, plan):
    with session_scope(engine) as session:
        descope(session, milestone_id=plan["ready"], person="UALICE", scope_cut="All", now=NOW)
    with session_scope(engine) as session, pytest.raises(UserError) as refused:
        mark_done(session, milestone_id=plan["ready"], person="UALICE", now=NOW)
    assert codes(refused.value) == [MilestoneProblem.ALREADY_DESCOPED]


@pytest.mark.parametrize("archived", ["milestone", "initiative"])
def test_an_archived_milestone_is_no_longer_in_the_plan(engine, plan, archived):
    with session_scope(engine) as session:
        row = (
            session.get(Milestone, plan["ready"])
            if archived == "milestone"
            else session.get(Initiative, plan["initiative"])
        )
        row.archived = True
        session.add(row)
    with session_scope(engine) as session, pytest.raises(NotFound) as refused:
        mark_done(session, milestone_id=plan["ready"], person="UALICE", now=NOW)
    assert codes(refused.value) == [MilestoneProblem.ARCHIVED]
    assert stored(engine, plan["ready"]).status == MilestoneStatus.OPEN


def test_an_unknown_milestone_is_not_found(engine, plan):
    with session_scope(engine) as session, pytest.raises(NotFound) as refused:
        check_can_act(session, milestone_id=plan["ready"] + 1000, person="UCOO")
    assert codes(refused.value) == [MilestoneProblem.NOT_FOUND]


def test_a_decision_applies_the_same_rules_without_a_button_permission(engine, plan):
    """What a decision poll will call: its leaders' vote decided, so no owner check, same audit."""
    with session_scope(engine) as session:
        assert apply_move_due(
            session,
            milestone_id=plan["ready"],
            actor="decision:7",
            new_due=date(2027, 2, 1),
            now=NOW,
        )
        with pytest.raises(UserError) as refused:
            apply_descope(
                session, milestone_id=plan["ready"], actor="decision:7", scope_cut="", now=NOW
            )
    assert codes(refused.value) == [MilestoneProblem.SCOPE_CUT_EMPTY]
    [entry] = entries(engine)
    assert (entry.actor, entry.after["due"]) == ("decision:7", "2027-02-01")
