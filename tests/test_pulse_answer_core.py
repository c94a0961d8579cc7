"""record_answer with an explicit `now`: owner only, until the period ends, audited, idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, select

from bot.errors import NotAllowed, UserError
from bot.pulses.answers import pulses_of, record_answer, record_status
from storage.db import session_scope
from storage.models import (
    AuditEntry,
    Initiative,
    KpiReading,
    Milestone,
    PulseAnswer,
    PulseRequest,
    PulseState,
)
from templates.problems import say_all
from tests import factories


def said(error: UserError) -> str:
    """What the person is told: the error's problems in words (the terminal's, unescaped)."""
    return say_all(error.problems, "cli")


def make_pulse(
    session: Session,
    *,
    initiative: Initiative,
    due_at: datetime,
    next_due_at: datetime | None,
    state: str = PulseState.SENT,
    channel_id: str | None = None,
    message_ts: str | None = None,
) -> PulseRequest:
    """A pulse row as the delivery side leaves it once the prompt DM is posted."""
    pulse = PulseRequest(
        initiative_id=initiative.id,
        owner_id=initiative.owner_id,
        period=due_at.isoformat(),
        due_at=due_at,
        next_due_at=next_due_at,
        state=state,
        claimed_at=due_at,
        sent_at=due_at if state == PulseState.SENT else None,
        channel_id=channel_id,
        message_ts=message_ts,
    )
    session.add(pulse)
    session.flush()
    return pulse


MONDAY = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 09:00 in New York
TUESDAY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
NEXT_MONDAY = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


@pytest.fixture
def plan(engine):
    """One owner (Tokyo), one initiative with a KPI and two milestones, one pulse sent on Monday."""
    with session_scope(engine) as session:
        factories.plan_settings(session)
        owner = factories.person(session, slack_id="UOWNER", tz="Asia/Tokyo")
        factories.person(session, slack_id="UOTHER")
        team = factories.team(session, lead=factories.person(session, slack_id="ULEAD"))
        objective = factories.objective(session)
        kpi = factories.kpi(session, objective=objective, key="portal-adoption", unit="%")
        initiative = factories.initiative(
            session,
            owner=owner,
            team=team,
            key="portal-beta",
            kpis=[kpi],
            dark_since=datetime(2026, 11, 20, tzinfo=UTC),
        )
        ready = factories.milestone(
            session, initiative=initiative, due=date(2027, 1, 15), key="beta-ready"
        )
        launch = factories.milestone(
            session, initiative=initiative, due=date(2027, 2, 1), key="beta-launch"
        )
        pulse = make_pulse(session, initiative=initiative, due_at=MONDAY, next_due_at=NEXT_MONDAY)
        return {
            "pulse": pulse.id,
            "kpi": kpi.id,
            "initiative": initiative.id,
            "ready": ready.id,
            "launch": launch.id,
        }


def answers(engine) -> list[PulseAnswer]:
    with Session(engine) as session:
        return list(session.exec(select(PulseAnswer).order_by(PulseAnswer.id)))


def audit_entries(engine, entity: str) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
            )
        )


def test_quick_answer_records_and_stops_followups(engine, plan):
    with session_scope(engine) as session:
        result = record_answer(
            session, pulse_id=plan["pulse"], person="UOWNER", status="at_risk", now=TUESDAY
        )
    assert result.created
    [answer] = answers(engine)
    assert (answer.status, answer.answered_at) == ("at_risk", TUESDAY)
    with Session(engine) as session:
        pulse = session.get(PulseRequest, plan["pulse"])
        assert pulse.state == PulseState.ANSWERED and pulse.answered_at == TUESDAY
        assert session.get(Initiative, plan["initiative"]).dark_since is None
    [entry] = audit_entries(engine, "pulse")
    assert entry.actor == "slack:UOWNER" and entry.action == "answer"
    assert entry.before is None and entry.after["status"] == "at_risk"


def test_re_answer_keeps_both_in_the_audit_log(engine, plan):
    for status, now in (("on_track", TUESDAY), ("off_track", TUESDAY.replace(hour=16))):
        with session_scope(engine) as session:
            record_answer(session, pulse_id=plan["pulse"], person="UOWNER", status=status, now=now)
    assert [a.status for a in answers(engine)] == ["on_track", "off_track"]
    first, second = audit_entries(engine, "pulse")
    assert first.after["status"] == "on_track"
    assert second.before["status"] == "on_track" and second.after["status"] == "off_track"


def test_double_click_writes_one_answer(engine, plan):
    results = []
    for _ in range(2):
        with session_scope(engine) as session:
            results.append(
                record_answer(
                    session,
                    pulse_id=plan["pulse"],
                    person="UOWNER",
                    status="on_track",
                    kpi_values={plan["kpi"]: 12.5},
                    now=TUESDAY,
                )
            )
    assert [r.created for r in results] == [True, False]
    assert results[0].answer_id == results[1].answer_id
    assert len(answers(engine)) == 1
    with Session(engine) as session:
        assert len(session.exec(select(KpiReading)).all()) == 1
    assert len(audit_entries(engine, "pulse")) == 1


def answer_in_detail(engine, plan, *, now=TUESDAY):
    with session_scope(engine) as session:
        record_answer(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            status="on_track",
            confidence=4,
            kpi_values={plan["kpi"]: 12.5},
            milestone_updates={plan["launch"]: date(2027, 2, 20)},
            blockers="Vendor contract",
            dependency_late=True,
            now=now,
        )


def test_a_quick_status_after_details_keeps_them(engine, plan):
    answer_in_detail(engine, plan)
    later = TUESDAY.replace(hour=18)
    with session_scope(engine) as session:
        result = record_status(
            session, pulse_id=plan["pulse"], person="UOWNER", status="off_track", now=later
        )
    assert result.created
    detailed, quick = answers(engine)
    assert (quick.status, quick.answered_at) == ("off_track", later)
    assert (quick.confidence, quick.blockers, quick.dependency_late) == (
        4,
        "Vendor contract",
        True,
    )
    assert detailed.status == "on_track"  # the older answer stays as it was, for the record
    with Session(engine) as session:
        [reading] = session.exec(select(KpiReading)).all()
        assert reading.value == 12.5
        assert session.get(Milestone, plan["launch"]).expected_due == date(2027, 2, 20)
    entry = audit_entries(engine, "pulse")[-1]
    assert (entry.before, entry.after) == ({"status": "on_track"}, {"status": "off_track"})
    assert len(audit_entries(engine, "kpi")) == 1 and len(audit_entries(engine, "milestone")) == 1


def test_a_quick_status_repeating_the_current_one_writes_nothing(engine, plan):
    answer_in_detail(engine, plan)
    with session_scope(engine) as session:
        result = record_status(
            session, pulse_id=plan["pulse"], person="UOWNER", status="on_track", now=TUESDAY
        )
    assert not result.created
    assert len(answers(engine)) == 1 and len(audit_entries(engine, "pulse")) == 1


def test_a_first_quick_status_audits_just_the_status(engine, plan):
    with session_scope(engine) as session:
        record_status(
            session, pulse_id=plan["pulse"], person="UOWNER", status="at_risk", now=TUESDAY
        )
    [answer] = answers(engine)
    assert (answer.confidence, answer.blockers, answer.dependency_late) == (None, None, False)
    [entry] = audit_entries(engine, "pulse")
    assert (entry.before, entry.after) == (None, {"status": "at_risk"})


def test_answer_after_the_period_ended_is_refused(engine, plan):
    with pytest.raises(UserError) as caught, session_scope(engine) as session:
        record_answer(
            session, pulse_id=plan["pulse"], person="UOWNER", status="on_track", now=NEXT_MONDAY
        )
    assert "closed when its period ended" in said(caught.value)
    assert answers(engine) == []
    with Session(engine) as session:
        assert session.get(PulseRequest, plan["pulse"]).answered_at is None


def test_only_the_owner_may_answer(engine, plan):
    with pytest.raises(NotAllowed) as caught, session_scope(engine) as session:
        record_answer(
            session, pulse_id=plan["pulse"], person="UOTHER", status="on_track", now=TUESDAY
        )
    assert "Only the owner" in said(caught.value)
    assert answers(engine) == []
    assert audit_entries(engine, "pulse") == []


def test_kpi_values_become_pulse_readings_on_the_owners_day(engine, plan):
    late_tuesday_utc = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # already Wednesday in Tokyo
    with session_scope(engine) as session:
        record_answer(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            status="on_track",
            kpi_values={plan["kpi"]: 17.0},
            now=late_tuesday_utc,
        )
    with Session(engine) as session:
        [reading] = session.exec(select(KpiReading)).all()
    assert (reading.value, reading.source, reading.as_of) == (17.0, "pulse", date(2026, 11, 25))
    assert reading.recorded_at == late_tuesday_utc
    [entry] = audit_entries(engine, "kpi")
    assert entry.entity_key == "portal-adoption" and entry.after["value"] == 17.0


def test_milestone_done_and_expected_date(engine, plan):
    with session_scope(engine) as session:
        record_answer(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            status="at_risk",
            milestone_updates={plan["ready"]: "done", plan["launch"]: date(2027, 2, 20)},
            blockers="Waiting on <!channel> & vendors",
            dependency_late=True,
            now=TUESDAY,
        )
    with Session(engine) as session:
        ready = session.get(Milestone, plan["ready"])
        launch = session.get(Milestone, plan["launch"])
        [answer] = session.exec(select(PulseAnswer)).all()
    assert (ready.status, ready.completed_at) == ("done", TUESDAY)
    assert (launch.status, launch.expected_due) == ("open", date(2027, 2, 20))
    assert answer.blockers == "Waiting on <!channel> & vendors" and answer.dependency_late
    keys = {(e.entity_key, e.after["status"]) for e in audit_entries(engine, "milestone")}
    assert keys == {("beta-ready", "done"), ("beta-launch", "open")}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"milestone_updates": {"launch": date(2026, 11, 1)}}, "in the past"),
        ({"kpi_values": {"kpi": float("inf")}}, "finite"),
        ({"kpi_values": {"other_kpi": 3.0}}, "not linked"),
        ({"status": "great"}, "on track, at risk or off track"),
        ({"confidence": 9}, "1 (low) to 5"),
    ],
)
def test_bad_answers_change_nothing(engine, plan, kwargs, message):
    with session_scope(engine) as session:
        other = factories.kpi(session, objective=factories.objective(session))
    ids = {**plan, "other_kpi": other.id}
    fields = {"status": "on_track", **kwargs}
    for name in ("milestone_updates", "kpi_values"):
        if name in fields:
            fields[name] = {ids[key]: value for key, value in fields[name].items()}
    with pytest.raises(UserError) as caught, session_scope(engine) as session:
        record_answer(session, pulse_id=plan["pulse"], person="UOWNER", now=TUESDAY, **fields)
    assert message in said(caught.value)
    assert answers(engine) == []
    with Session(engine) as session:
        assert session.exec(select(KpiReading)).all() == []
        assert session.get(Milestone, plan["launch"]).expected_due is None
        assert session.get(Initiative, plan["initiative"]).dark_since is not None


def test_my_pulses_lists_pending_and_still_changeable_answers(engine, plan):
    with session_scope(engine) as session:
        initiative = session.get(Initiative, plan["initiative"])
        other = Initiative(
            key="crm",
            title="CRM cleanup",
            owner_id=initiative.owner_id,
            team_id=initiative.team_id,
            active_since=MONDAY,
        )
        session.add(other)
        session.flush()
        make_pulse(
            session,
            initiative=other,
            due_at=MONDAY,
            next_due_at=NEXT_MONDAY,
            state=PulseState.CLAIMED,
        )
    with session_scope(engine) as session:
        mine = pulses_of(session, person="UOWNER", now=TUESDAY)
        assert [p.initiative_key for p in mine.pending] == ["portal-beta"]
        assert (mine.total_pending, mine.answered) == (1, [])
        assert pulses_of(session, person="UOWNER", now=NEXT_MONDAY).pending == []
        assert pulses_of(session, person="UNOBODY", now=TUESDAY).pending == []
        record_answer(
            session, pulse_id=plan["pulse"], person="UOWNER", status="at_risk", now=TUESDAY
        )
    with session_scope(engine) as session:
        mine = pulses_of(session, person="UOWNER", now=TUESDAY)
        assert mine.pending == [] and mine.total_pending == 0
        [answered] = mine.answered
        assert (answered.pulse_id, answered.status, answered.answered_at) == (
            plan["pulse"],
            "at_risk",
            TUESDAY,
        )
        # Once the period ends, the answer can no longer change, so it is not listed.
        assert pulses_of(session, person="UOWNER", now=NEXT_MONDAY).answered == []


def test_concurrent_identical_answers_write_one(engine, plan):
    """Two clicks arriving at once (two threads, two transactions): the pulse row lock orders them."""
    import threading

    barrier = threading.Barrier(4)
    results, errors = [], []

    def click():
        barrier.wait()
        try:
            with session_scope(engine) as session:
                results.append(
                    record_answer(
                        session,
                        pulse_id=plan["pulse"],
                        person="UOWNER",
                        status="on_track",
                        kpi_values={plan["kpi"]: 5.0},
                        now=TUESDAY,
                    )
                )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert len(answers(engine)) == 1
    with Session(engine) as session:
        assert len(session.exec(select(KpiReading)).all()) == 1
