"""Export round-trips: importing an export into the same database changes nothing, in every format."""

from __future__ import annotations

from datetime import date

import pytest
import yaml
from sqlmodel import Session

from bot.planfile.importer import stored_state
from storage.models import Milestone
from tests.planfile_support import BASE_PLAN, Cli, snapshot


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


@pytest.fixture
def lived_in(cli, engine):
    """The base plan after some life in Slack: a milestone done, one moved to a later date (its
    original date kept), a dependency blocked."""
    assert cli("import", str(BASE_PLAN)).code == 0
    with Session(engine) as session:
        from sqlmodel import select

        from storage.models import Dependency

        milestone = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        milestone.status = "done"
        moved = session.exec(select(Milestone).where(Milestone.key == "data-migration")).one()
        moved.due = date(2027, 4, 15)
        dependency = session.exec(
            select(Dependency).where(Dependency.key == "support-training")
        ).one()
        dependency.state = "blocked"
        session.add_all([milestone, moved, dependency])
        session.commit()
    return snapshot(engine)


@pytest.mark.parametrize(
    ("fmt", "output"), [("yaml", "plan.yaml"), ("xlsx", "plan.xlsx"), ("csv", "plan-csv")]
)
def test_importing_an_export_changes_nothing(cli, engine, lived_in, tmp_path, fmt, output):
    target = tmp_path / output
    run = cli("export", "--format", fmt, "--output", str(target))
    assert run.code == 0, run.err
    assert f"Exported the plan as {fmt} to {target}" in run.out
    run = cli("import", str(target))
    assert run.code == 0, run.err
    assert "nothing changed" in run.out, run.out
    assert snapshot(engine) == lived_in


def test_yaml_export_to_stdout_is_the_plan(cli, engine, lived_in):
    run = cli("export")
    assert run.code == 0
    doc = yaml.safe_load(run.out)
    assert doc["organization"] == "Northwind Financial"
    assert doc["admins"] == ["U0ADMIN01"]
    portal = doc["initiatives"][0]
    assert portal["milestones"][0] == {
        "key": "beta-ready",
        "title": "Beta feature-complete",
        "due": yaml.safe_load("2027-01-15"),
        "status": "done",
    }
    assert portal["dependencies"][0]["state"] == "blocked"
    assert "status" not in portal["milestones"][1]  # defaults are left out
    assert doc["objectives"][0]["kpis"][0]["readings"][1] == {
        "as_of": yaml.safe_load("2026-11-15"),
        "value": 10.25,
    }
    assert "&" not in run.out and "*" not in run.out.replace("* * mon", "")  # no YAML aliases


def test_an_export_carries_what_slack_changed_into_a_fresh_database(
    cli, engine, lived_in, tmp_path, monkeypatch
):
    target = tmp_path / "plan.yaml"
    assert cli("export", "--output", str(target)).code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("DATABASE_URL", other)
    assert cli("import", str(target)).code == 0
    from storage.db import make_engine

    fresh = make_engine(other)
    with Session(fresh) as session:
        state, _ = stored_state(session)
    fresh.dispose()
    with Session(engine) as session:
        original, _ = stored_state(session)
    assert state.items == original.items
    assert state.settings == original.settings
    assert state.readings == original.readings
    assert state.original_dues == original.original_dues == {"data-migration": date(2027, 3, 1)}


def test_export_of_an_empty_database_says_so(cli):
    run = cli("export")
    assert run.code == 2
    assert "holds no plan yet" in run.err


def test_spreadsheet_exports_need_an_output(cli, lived_in, tmp_path):
    run = cli("export", "--format", "xlsx")
    assert run.code == 2
    assert "--output is required" in run.err
    (tmp_path / "file").write_text("x")
    run = cli("export", "--format", "csv", "--output", str(tmp_path / "file"))
    assert run.code == 2 and "is a file" in run.err
