"""What Slack moved along is in the export: dependency states, milestone statuses, moved dates.

A milestone's `original_due` is history: an export carries it into a fresh database, and no file
can change it for a milestone already stored.
"""

from __future__ import annotations

from datetime import date

import pytest
import yaml
from sqlmodel import Session, select

from storage.db import make_engine
from storage.models import Dependency, DependencyState, Milestone
from tests.planfile_support import BASE_PLAN, Cli, edited, snapshot, write

DATA_MIGRATION = "{key: data-migration, title: Data migration, due: 2027-03-01}"  # line 44


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


def move(engine, key: str, due: date) -> None:
    """What **New date** in Slack does to the row: `due` moves, `original_due` stays."""
    with Session(engine) as session:
        milestone = session.exec(select(Milestone).where(Milestone.key == key)).one()
        milestone.due = due
        session.add(milestone)
        session.commit()


def set_state(engine, key: str, state: str) -> None:
    with Session(engine) as session:
        dependency = session.exec(select(Dependency).where(Dependency.key == key)).one()
        dependency.state = state
        session.add(dependency)
        session.commit()


def milestones(url_or_engine) -> dict[str, tuple[date, date, str]]:
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    with Session(engine) as session:
        found = {m.key: (m.due, m.original_due, m.status) for m in session.exec(select(Milestone))}
    if isinstance(url_or_engine, str):
        engine.dispose()
    return found


def exported(cli) -> dict:
    run = cli("export")
    assert run.code == 0, run.err
    return yaml.safe_load(run.out)


def children(doc: dict, kind: str) -> dict[str, dict]:
    return {item["key"]: item for i in doc["initiatives"] for item in i.get(kind, [])}


@pytest.mark.parametrize("state", [s.value for s in DependencyState])
def test_every_dependency_state_is_exported_and_carried_into_a_fresh_database(
    cli, engine, tmp_path, monkeypatch, state
):
    assert cli("import", str(BASE_PLAN)).code == 0
    set_state(engine, "support-training", state)
    dependency = children(exported(cli), "dependencies")["support-training"]
    if state == DependencyState.REQUESTED:
        assert "state" not in dependency  # the state every dependency starts in
    else:
        assert dependency["state"] == state
    target = tmp_path / "plan.yaml"
    assert cli("export", "--output", str(target)).code == 0
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("DATABASE_URL", fresh)
    assert cli("import", str(target)).code == 0
    fresh_engine = make_engine(fresh)
    with Session(fresh_engine) as session:
        states = {d.key: d.state for d in session.exec(select(Dependency))}
    fresh_engine.dispose()
    assert states == {"support-training": state, "data-cleansing": "acknowledged"}


def test_milestone_statuses_and_moved_dates_are_exported(cli, engine):
    assert cli("import", str(BASE_PLAN)).code == 0
    move(engine, "data-migration", date(2027, 4, 15))
    with Session(engine) as session:
        done = session.exec(select(Milestone).where(Milestone.key == "beta-launch")).one()
        done.status = "descoped"
        session.add(done)
        session.commit()
    found = children(exported(cli), "milestones")
    assert found["data-migration"] == {
        "key": "data-migration",
        "title": "Data migration",
        "due": date(2027, 4, 15),
        "original_due": date(2027, 3, 1),
    }
    assert found["beta-launch"]["status"] == "descoped"
    assert found["erp-sandbox"]["status"] == "done"
    assert "original_due" not in found["beta-ready"]  # never moved: nothing to say


@pytest.mark.parametrize(("fmt", "output"), [("xlsx", "plan.xlsx"), ("csv", "plan-csv")])
def test_spreadsheets_carry_the_original_date_into_a_fresh_database(
    cli, engine, tmp_path, monkeypatch, fmt, output
):
    assert cli("import", str(BASE_PLAN)).code == 0
    move(engine, "data-migration", date(2027, 4, 15))
    target = tmp_path / output
    assert cli("export", "--format", fmt, "--output", str(target)).code == 0
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("DATABASE_URL", fresh)
    assert cli("import", str(target)).code == 0
    assert milestones(fresh) == milestones(engine)
    assert milestones(fresh)["data-migration"] == (date(2027, 4, 15), date(2027, 3, 1), "open")


def test_a_file_cannot_rewrite_a_stored_milestones_original_date(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    move(engine, "data-migration", date(2027, 4, 15))
    before = snapshot(engine)
    rewritten = edited(
        tmp_path,
        DATA_MIGRATION,
        "{key: data-migration, title: Data migration, due: 2027-04-15, original_due: 2027-04-15}",
    )
    run = cli("import", str(rewritten))
    assert run.code == 0, run.err
    assert "nothing changed" in run.out, run.out
    assert snapshot(engine) == before
    # Moving `due` in the file keeps the original too, as a move in Slack does.
    run = cli(
        "import",
        str(
            write(rewritten, rewritten.read_text().replace("due: 2027-04-15,", "due: 2027-05-03,"))
        ),
    )
    assert run.code == 0, run.err
    assert milestones(engine)["data-migration"] == (date(2027, 5, 3), date(2027, 3, 1), "open")


def test_a_new_milestone_takes_its_original_date_from_the_file(cli, engine, tmp_path):
    path = edited(
        tmp_path,
        DATA_MIGRATION,
        "{key: data-migration, title: Data migration, due: 2027-03-01, original_due: 2027-02-01}",
    )
    run = cli("import", str(path))
    assert run.code == 0, run.err
    assert milestones(engine)["data-migration"] == (date(2027, 3, 1), date(2027, 2, 1), "open")
    assert milestones(engine)["beta-ready"] == (date(2027, 1, 15), date(2027, 1, 15), "open")
    assert children(exported(cli), "milestones")["data-migration"]["original_due"] == date(
        2027, 2, 1
    )
    assert cli("import", str(path)).out.count("nothing changed") == 1


def test_a_bad_original_date_is_listed_with_its_place_and_nothing_is_written(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    before = snapshot(engine)
    path = edited(
        tmp_path,
        DATA_MIGRATION,
        "{key: data-migration, title: Data migration, due: 2027-03-01, original_due: 2027-02-30}",
    )
    run = cli("import", str(path))
    assert run.code == 2, run
    assert (
        "plan.yaml, line 44: initiative erp, milestone data-migration, original_due: "
        "2027-02-30 is not a real date" in run.err
    ), run.err
    assert snapshot(engine) == before
