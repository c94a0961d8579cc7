"""Importing a plan: idempotent upsert by key, archive and restore, dry runs, audit, interruptions."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import Session, select

import bot.planfile.apply as apply_module
from bot.planfile.importer import import_plan
from bot.planfile.validate import load_plan
from storage.models import (
    AuditEntry,
    Dependency,
    Holiday,
    Initiative,
    InitiativeKpi,
    KpiReading,
    Milestone,
    Person,
    PlanSettings,
    Team,
    TeamMember,
)
from tests.planfile_support import BASE_PLAN, Cli, base_text, edited, snapshot, write

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


def audit_entries(engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.id)))


def test_first_import_creates_everything_and_records_who(cli, engine, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ops-anna")
    with freeze_time("2026-11-26 14:00:00"):
        run = cli("import", str(BASE_PLAN))
    assert run.code == 0, run.err
    assert "Imported" in run.out
    assert "Teams: 3 created" in run.out
    assert "created: it (IT Delivery), marketing (Marketing), finance (Finance)" in run.out
    assert "Milestones: 4 created" in run.out
    assert "KPI readings: 2 created" in run.out
    with Session(engine) as session:
        settings = session.get(PlanSettings, 1)
        assert settings.organization == "Northwind Financial"
        assert settings.timezone == "America/New_York"
        assert settings.decisions_channel == "#exec-decisions"
        people = {p.email or p.slack_id: p for p in session.exec(select(Person))}
        assert people["cfo@northwind.example"].is_leader
        assert people["U0ADMIN01"].is_admin and not people["U0ADMIN01"].is_leader
        assert not people["alice@northwind.example"].is_leader
        it = session.exec(select(Team).where(Team.key == "it")).one()
        assert it.lead_id == people["cio@northwind.example"].id
        assert [m.person_id for m in session.exec(select(TeamMember))] == [
            people["alice@northwind.example"].id
        ]
        erp = session.exec(select(Initiative).where(Initiative.key == "erp")).one()
        assert erp.status == "paused"
        assert len(session.exec(select(InitiativeKpi)).all()) == 2
        sandbox = session.exec(select(Milestone).where(Milestone.key == "erp-sandbox")).one()
        assert sandbox.status == "done"
        assert sandbox.original_due == sandbox.due == date(2026, 11, 1)
        assert sandbox.completed_at == datetime(2026, 11, 26, 14, tzinfo=UTC)
        cleansing = session.exec(select(Dependency).where(Dependency.key == "data-cleansing")).one()
        assert cleansing.state == "acknowledged"
        assert cleansing.ack_within_days == 5
        # Not asked yet: the next tick posts the request and starts its clock. The file's state
        # comes with the bookkeeping that goes with it.
        assert cleansing.requested_at is None and cleansing.ack_due_at is None
        assert cleansing.acknowledged_at == datetime(2026, 11, 26, 14, tzinfo=UTC)
        assert cleansing.request_revision == 1
        support = session.exec(select(Dependency).where(Dependency.key == "support-training")).one()
        assert support.state == "requested"
        assert support.milestone_id is not None
        holidays = session.exec(select(Holiday).order_by(Holiday.start)).all()
        assert [(h.start, h.end, h.name) for h in holidays] == [
            (date(2026, 12, 24), date(2026, 12, 26), "Winter break"),
            (date(2027, 1, 1), date(2027, 1, 1), ""),
        ]
    entries = audit_entries(engine)
    assert {e.actor for e in entries} == {"cli:ops-anna"}
    assert {e.action for e in entries} == {"create"}
    created = {(e.entity, e.entity_key) for e in entries}
    assert ("milestone", "beta-ready") in created
    assert ("kpi_reading", "portal-adoption@2026-11-15") in created
    assert ("plan", "settings") in created
    milestone = next(e for e in entries if e.entity_key == "beta-ready")
    assert milestone.after == {
        "initiative": "portal-beta",
        "title": "Beta feature-complete",
        "due": "2027-01-15",
    }


def test_importing_the_same_file_twice_changes_nothing(cli, engine):
    assert cli("import", str(BASE_PLAN)).code == 0
    before = snapshot(engine)
    run = cli("import", str(BASE_PLAN))
    assert run.code == 0
    assert "nothing changed" in run.out
    assert "Milestones: 4 unchanged" in run.out
    assert snapshot(engine) == before


def test_an_edit_is_an_update_with_before_and_after(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    path = edited(
        tmp_path,
        "title: Beta feature-complete, due: 2027-01-15",
        "title: Beta complete, due: 2027-01-22",
    )
    run = cli("import", str(path))
    assert run.code == 0
    assert "Milestones: 1 updated, 3 unchanged" in run.out
    assert "updated: beta-ready (Beta complete): title, due" in run.out
    with Session(engine) as session:
        milestone = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        assert milestone.due == date(2027, 1, 22)
        assert milestone.original_due == date(2027, 1, 15)  # the baseline stays for slip reports
    update = audit_entries(engine)[-1]
    assert (update.action, update.entity, update.entity_key) == (
        "update",
        "milestone",
        "beta-ready",
    )
    assert update.before == {"title": "Beta feature-complete", "due": "2027-01-15"}
    assert update.after == {"title": "Beta complete", "due": "2027-01-22"}


def test_missing_items_are_archived_and_restored_when_they_come_back(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    text = base_text()
    without_erp = text[: text.index("  - key: erp\n")]
    run = cli("import", str(write(tmp_path / "plan.yaml", without_erp)))
    assert run.code == 0
    assert "Initiatives: 1 archived, 1 unchanged" in run.out
    assert "archived: erp (ERP integration)" in run.out
    assert "Milestones: 2 archived" in run.out
    with Session(engine) as session:
        erp = session.exec(select(Initiative).where(Initiative.key == "erp")).one()
        assert erp.archived  # not deleted: its history stays
        milestones = session.exec(select(Milestone).where(Milestone.initiative_id == erp.id)).all()
        assert [m.archived for m in milestones] == [True, True]
    assert cli("import", str(write(tmp_path / "plan.yaml", without_erp))).out.count("archived") == 0

    run = cli("import", str(BASE_PLAN))
    assert "Initiatives: 1 restored, 1 unchanged" in run.out
    assert "Dependencies: 1 restored, 1 unchanged" in run.out
    with Session(engine) as session:
        assert not session.exec(select(Initiative).where(Initiative.key == "erp")).one().archived
    actions = [(e.action, e.entity_key) for e in audit_entries(engine)]
    assert ("archive", "erp") in actions and ("restore", "erp") in actions


def test_dry_run_reports_the_changes_and_writes_nothing(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    before = snapshot(engine)
    path = edited(tmp_path, "name: Marketing,", "name: Brand and Marketing,")
    run = cli("import", "--dry-run", str(path))
    assert run.code == 0
    assert "Dry run" in run.out and "nothing was written" in run.out
    assert "updated: marketing (Brand and Marketing): name" in run.out
    assert snapshot(engine) == before


def test_dry_run_into_an_empty_database(cli, engine):
    before = snapshot(engine)
    run = cli("import", "--dry-run", str(BASE_PLAN))
    assert "Teams: 3 created" in run.out
    assert snapshot(engine) == before


def test_slack_owned_progress_survives_a_reimport_that_does_not_mention_it(cli, engine):
    assert cli("import", str(BASE_PLAN)).code == 0
    with Session(engine) as session:
        milestone = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        milestone.status = "done"
        dependency = session.exec(
            select(Dependency).where(Dependency.key == "support-training")
        ).one()
        dependency.state = "delivered"
        session.add_all([milestone, dependency])
        session.commit()
    run = cli("import", str(BASE_PLAN))
    assert "nothing changed" in run.out
    with Session(engine) as session:
        assert (
            session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one().status
            == "done"
        )


def test_a_status_written_in_the_file_is_applied(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    path = edited(tmp_path, "due: 2027-01-15}", "due: 2027-01-15, status: done}")
    run = cli("import", str(path))
    assert "updated: beta-ready (Beta feature-complete): status" in run.out
    with Session(engine) as session:
        milestone = session.exec(select(Milestone).where(Milestone.key == "beta-ready")).one()
        assert milestone.status == "done" and milestone.completed_at is not None


def test_people_known_by_slack_id_and_email_are_one_person(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    with Session(engine) as session:  # what a Slack sync would do: learn alice's user ID
        alice = session.exec(select(Person).where(Person.email == "alice@northwind.example")).one()
        alice.slack_id = "U0ALICE01"
        session.add(alice)
        session.commit()
        count = len(session.exec(select(Person)).all())
    path = edited(tmp_path, "owner: alice@northwind.example", "owner: U0ALICE01")
    run = cli("import", str(path))
    assert "nothing changed" in run.out  # same person, however the file names her
    path = edited(tmp_path, "owner: alice@northwind.example", "owner: ALICE@Northwind.example")
    assert "nothing changed" in cli("import", str(path)).out  # e-mail case does not matter
    with Session(engine) as session:
        assert len(session.exec(select(Person)).all()) == count


def test_leaders_can_change(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    path = edited(tmp_path, "leaders: [cfo@northwind.example,", "leaders: [cmo@northwind.example,")
    run = cli("import", str(path))
    assert "Plan settings: 1 updated" in run.out and "leaders" in run.out
    with Session(engine) as session:
        leaders = {p.email for p in session.exec(select(Person).where(Person.is_leader))}
    assert leaders == {"cmo@northwind.example", "cio@northwind.example", "coo@northwind.example"}


def test_readings_are_deduplicated_and_appended(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    path = edited(
        tmp_path,
        "{as_of: 2026-11-15, value: 10.25}",
        "{as_of: 2026-11-15, value: 10.25}, {as_of: 2026-11-15, value: 10.25}, {as_of: 2026-11-22, value: 11}",
    )
    run = cli("import", str(path))
    assert "KPI readings: 1 created" in run.out
    assert "portal-adoption 2026-11-22: 11" in run.out
    with Session(engine) as session:
        assert len(session.exec(select(KpiReading)).all()) == 3
    # Readings are history: a file that no longer lists one does not delete it.
    assert "nothing changed" in cli("import", str(BASE_PLAN)).out
    with Session(engine) as session:
        assert len(session.exec(select(KpiReading)).all()) == 3


def test_a_milestone_can_move_to_another_initiative(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    text = base_text()
    line = "      - {key: beta-ready, title: Beta feature-complete, due: 2027-01-15}\n"
    text = text.replace(line, "").replace(
        "    milestones:\n      - {key: erp-sandbox",
        "    milestones:\n" + line + "      - {key: erp-sandbox",
    )
    run = cli("import", str(write(tmp_path / "plan.yaml", text)))
    assert run.code == 0, run.err
    assert "updated: beta-ready (Beta feature-complete): initiative" in run.out


def test_a_failure_half_way_rolls_everything_back(cli, engine, tmp_path, monkeypatch):
    assert cli("import", str(BASE_PLAN)).code == 0
    before = snapshot(engine)
    calls = []
    real_update_rows = apply_module.update_rows

    def failing_update_rows(**kwargs):
        real_update_rows(**kwargs)
        calls.append(kwargs["kind"])
        if kwargs["kind"] == "initiative":  # teams, objectives, KPIs already written
            raise RuntimeError("disk full")

    monkeypatch.setattr(apply_module, "update_rows", failing_update_rows)
    path = edited(tmp_path, "name: Marketing,", "name: Brand,")
    path = write(path, path.read_text().replace("title: ERP integration", "title: ERP programme"))
    run = cli("import", str(path))
    assert run.code == 1
    assert "team" in calls
    assert snapshot(engine) == before


def test_a_killed_import_leaves_the_previous_plan_intact(cli, engine, database_url, tmp_path):
    """SIGKILL in the middle of applying (after several bulk writes): nothing of it remains."""
    assert cli("import", str(BASE_PLAN)).code == 0
    before = snapshot(engine)
    big = base_text().replace("name: IT Delivery", "name: IT") + "".join(
        f"  - {{key: extra-{n}, title: Extra {n}, owner: U0EXTRA{n:03d}, team: it,"
        f" milestones: [{{key: extra-{n}-m, title: M, due: 2027-05-01}}]}}\n"
        for n in range(200)
    )
    plan = write(tmp_path / "big.yaml", big)
    script = (
        "import os, signal, sys\n"
        "import bot.planfile.apply as apply_module\n"
        "real = apply_module.insert_rows\n"
        "def dying(**kwargs):\n"
        "    real(**kwargs)\n"
        "    if kwargs['kind'] == 'milestone':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "apply_module.insert_rows = dying\n"
        "from bot.entry.cli import main\n"
        f"sys.exit(main(['import', {str(plan)!r}]))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -9, process.stderr  # really killed mid-apply
    assert snapshot(engine) == before
    run = cli("import", str(plan))  # and the database is still usable
    assert run.code == 0, run.err
    assert "Initiatives: 200 created, 2 unchanged" in run.out


def test_import_plan_core_with_an_explicit_now(engine):
    plan = load_plan(str(BASE_PLAN))
    now = datetime(2027, 1, 4, 14, tzinfo=UTC)
    changes = import_plan(engine, plan, actor="system", now=now)
    assert changes.changed
    assert len(changes.kinds["initiative"].created) == 2
    again = import_plan(engine, plan, actor="system", now=now)
    assert not again.changed
    assert {e.at for e in audit_entries(engine)} == {now}


def test_two_imports_at_once_are_serialised(engine):
    """Both succeed: the second waits, then finds the first one's plan and changes nothing."""
    import threading

    plan = load_plan(str(BASE_PLAN))
    now = datetime(2027, 1, 4, 14, tzinfo=UTC)
    results, errors = [], []

    def run():
        try:
            results.append(import_plan(engine, plan, actor="system", now=now).changed)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [False, True]
    with Session(engine) as session:
        assert len(session.exec(select(Person)).all()) == 7
