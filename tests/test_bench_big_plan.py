"""The detection benchmark's plan and floor stay honest: a tiny big plan, counted again in Python.

The benchmark itself (bench/bench_detection.py) is not part of the suite; this keeps its generator
and its floor query in step with the rules they stand for, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, select

from bench.big_plan import (
    NOW,
    TODAY,
    PlanSize,
    bench_workspace,
    build_big_plan,
    overdue_floor,
    overdue_ids,
)
from storage.models import (
    Dependency,
    DependencyRequest,
    Initiative,
    Milestone,
    Person,
    PlanSettings,
    Team,
)

TINY = PlanSize(
    initiatives=5,
    milestones=50,
    dependencies=40,
    kpis=4,
    readings=120,
    people=12,
    teams=3,
    objectives=2,
    overdue_milestones=3,
    overdue_dependencies=4,
    unacknowledged=3,
)


def test_the_floor_counts_exactly_the_overdue_rows(engine):
    built = build_big_plan(engine, TINY)
    with Session(engine) as session:
        milestones = session.exec(select(Milestone)).all()
        dependencies = session.exec(select(Dependency)).all()
        floor = overdue_floor(session, TODAY, NOW)
        ids = overdue_ids(session, TODAY, NOW)
    # The rules, in plain Python over every row.
    missed = {m.id for m in milestones if m.status == "open" and m.due < TODAY and not m.archived}
    late = {
        d.id
        for d in dependencies
        if d.state != "delivered" and d.needed_by < TODAY and not d.archived
    }
    unacknowledged = {
        d.id
        for d in dependencies
        if d.state == "requested"
        and d.ack_due_at is not None
        and d.ack_due_at < NOW
        and not d.archived
    }
    assert (floor.missed, floor.late, floor.unacknowledged) == (
        len(missed),
        len(late),
        len(unacknowledged),
    )
    assert (built.missed, built.late, built.unacknowledged) == (
        len(missed),
        len(late),
        len(unacknowledged),
    )
    assert len(missed) == 3 and len(late) == 4 and len(unacknowledged) >= 3
    assert sorted(ids) == sorted(
        [(0, i) for i in missed] + [(1, i) for i in late] + [(2, i) for i in unacknowledged]
    )
    # The edges the floor must get right are really there.
    assert any(m.due == TODAY and m.status == "open" for m in milestones)  # due today: not yet
    assert any(m.archived and m.status == "open" and m.due < TODAY for m in milestones)
    assert any(m.due < TODAY and m.status == "done" for m in milestones)
    assert any(d.state == "delivered" and d.needed_by < TODAY for d in dependencies)
    assert any(d.needed_by == TODAY and d.state != "delivered" for d in dependencies)
    assert any(d.archived and d.needed_by < TODAY for d in dependencies)


def test_the_plan_looks_like_one_the_bot_has_run_for_a_while(engine):
    build_big_plan(engine, TINY)
    with Session(engine) as session:
        assert session.get(PlanSettings, 1).timezone == "America/New_York"
        assert all(p.slack_id and p.tz for p in session.exec(select(Person)))
        assert all(t.channel and t.channel_id for t in session.exec(select(Team)))
        dependencies = session.exec(select(Dependency)).all()
        assert set(Counter(d.state for d in dependencies)) == {
            "requested",
            "acknowledged",
            "delivered",
            "at_risk",
            "blocked",
        }
        assert len(session.exec(select(DependencyRequest)).all()) == len(dependencies)
        assert len(session.exec(select(Initiative)).all()) == TINY.initiatives
        # Each dependency holds up a milestone of its own initiative.
        owner = {m.id: m.initiative_id for m in session.exec(select(Milestone))}
        assert all(owner[d.milestone_id] == d.initiative_id for d in dependencies)
    workspace = bench_workspace(TINY)
    assert len(workspace.users) == TINY.people
    assert workspace.channel_by_name("#team-0") is not None
