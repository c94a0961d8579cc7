"""The example plan behind `planpulse demo`: meaningful whatever the date, importable as a file.

The demo's live run (real server, stand-in, tick) is tested in tests/test_demo.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.entry.cli import main
from bot.entry.demo import import_example, print_summary, summary_context
from bot.planfile.example import example_workspace, render_example_plan
from bot.planfile.validate import validate_document
from bot.planfile.yaml_reader import read_yaml


@pytest.mark.parametrize(
    "today", [date(2026, 11, 26), date(2027, 2, 28), date(2028, 2, 29), date(2030, 12, 31)]
)
def test_the_example_is_valid_and_interesting_on_any_day(engine, today):
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=15)
    changes = import_example(engine, today, now=now)
    assert len(changes.kinds["initiative"].created) == 6
    summary = summary_context(engine, now)
    assert {m["key"] for m in summary["missed"]} == {"beta-ready", "idle-cleanup"}
    assert "training-plan" in {m["key"] for m in summary["due_soon"]}
    late = {d["key"] for d in summary["dependencies"] if d["late"]}
    assert late == {"coa-mapping"}
    assert all(
        kpi.latest is not None for objective in summary["objectives"] for kpi in objective.kpis
    )


def test_every_person_in_the_example_is_a_user_of_its_workspace():
    plan = validate_document(*read_yaml("example", render_example_plan(date(2026, 11, 26))))
    emails = {user["email"] for user in example_workspace()["users"]}
    named = set(plan.leaders) | set(plan.admins)
    for team in plan.teams:
        named |= {team.lead, *team.members} - {None}
    named |= {o.owner for o in plan.objectives} | {i.owner for i in plan.initiatives}
    assert named <= emails
    zones = {user["tz"] for user in example_workspace()["users"]}
    assert zones == {"America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Tokyo"}


def test_the_summary_prints_the_health_on_a_fixed_day(engine, capsys):
    today, now = date(2027, 3, 10), datetime(2027, 3, 10, 15, tzinfo=UTC)
    import_example(engine, today, now=now)
    print_summary(engine, now)
    first = capsys.readouterr().out
    assert "Northwind Financial: plan health on 2027-03-10 (America/New_York)" in first
    assert "Service requests via the portal: 10.4 % on 2027-03-03; target 40 %" in first
    assert "Beta feature-complete [beta-ready, portal-beta]: due 2027-03-07, 3 days ago" in first
    assert (
        "Chart-of-accounts mapping signed off [coa-mapping]: Finance Operations for erp-integration, needed by 2027-03-08 (LATE); requested"
        in first
    )


def test_demo_refuses_a_database_it_cannot_recreate(capsys):
    assert main(["demo", "--database", "postgresql+psycopg://postgres@127.0.0.1:5432/test"]) == 2
    assert "needs a SQLite file URL" in capsys.readouterr().err


def test_the_stand_in_loads_the_example_workspace():
    from bot.planfile.example import WORKSPACE_FILE
    from standin.workspace import Workspace

    workspace = Workspace.from_yaml(WORKSPACE_FILE)
    assert workspace.user_by_email("alice.chen@northwind.example").tz == "America/New_York"
    assert workspace.channel_by_name("#exec-decisions").members == {
        "U0NW0CFO1",
        "U0NW0CIO1",
        "U0NW0COO1",
    }
    plan = validate_document(*read_yaml("example", render_example_plan(date(2026, 11, 26))))
    assert all(workspace.channel_by_name(team.channel) for team in plan.teams)
