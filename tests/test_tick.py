"""The tick: every step once, failures isolated, daily jobs decided by a row, `planpulse tick`."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from scheduler import tick
from scheduler.tick import run_once_per_period, run_tick
from standin import User
from storage.models import JobRun, Person, ProcessedEvent, PulseRequest, PulseState
from tests import factories

MONDAY = datetime(2027, 1, 4, 15, tzinfo=UTC)


@pytest.fixture
def plan(engine):
    with Session(engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        factories.initiative(session, owner=alice, team=factories.team(session, lead=alice))
        session.commit()
    return engine


@pytest.fixture
def directory_syncs(monkeypatch):
    """Stands in for `bot.directory.sync_people` and counts its runs."""
    runs: list[datetime] = []
    module = types.ModuleType("bot.directory")
    module.sync_people = lambda services, now: runs.append(now) or "synced"  # type: ignore[attr-defined]
    module.resolve_new_people = lambda services, now: 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.directory", module)
    return runs


def test_tick_runs_every_step(plan, services, standin, directory_syncs):
    report = run_tick(services, MONDAY)
    assert report.ok, report.failed
    assert report.results["pulses"].sent == 1
    assert report.results["directory"] == "synced"
    assert len(standin.calls("chat.postMessage")) == 1
    # Reminders come from the same tick, a day later.
    later = run_tick(services, MONDAY + timedelta(days=1))
    assert later.results["follow_ups"].reminders == 1


def test_a_failing_step_does_not_stop_the_others(plan, services, standin, monkeypatch, caplog):
    def broken(services, now):
        raise RuntimeError("database hiccup")

    monkeypatch.setitem(tick.STEPS, "pulses", broken)
    monkeypatch.setitem(tick.STEPS, "directory", broken)
    report = run_tick(services, MONDAY)
    assert set(report.failed) == {"pulses", "directory"}
    assert "follow_ups" in report.results
    assert "Tick step pulses failed" in caplog.text


def test_directory_sync_once_a_day_across_processes(plan, services, standin, directory_syncs):
    for minutes in (0, 1, 30, 500):
        run_tick(services, MONDAY + timedelta(minutes=minutes))
    assert directory_syncs == [MONDAY]
    run_tick(services, datetime(2027, 1, 5, 0, 1, tzinfo=UTC))
    assert len(directory_syncs) == 2
    with Session(plan) as session:
        runs = session.exec(select(JobRun).order_by(JobRun.id)).all()
    assert [(r.job, r.period) for r in runs if r.job == tick.DIRECTORY_JOB] == [
        ("directory_sync", "2027-01-04"),
        ("directory_sync", "2027-01-05"),
    ]
    assert all(r.finished_at is not None for r in runs)


def test_a_failed_daily_job_is_tried_again(engine, services):
    attempts: list[datetime] = []

    def flaky(services, now):
        attempts.append(now)
        if len(attempts) == 1:
            raise RuntimeError("Slack down")
        return "ok"

    with pytest.raises(RuntimeError):
        run_once_per_period(services, job="j", period="p", now=MONDAY, run=flaky)
    assert run_once_per_period(services, job="j", period="p", now=MONDAY, run=flaky) == "ok"
    assert run_once_per_period(services, job="j", period="p", now=MONDAY, run=flaky) is None
    assert len(attempts) == 2


def _cli(env_overrides: dict[str, str], cwd, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", "tick", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_planpulse_tick_runs_once_and_exits_zero(plan, settings, standin, tmp_path):
    env = {
        "DATABASE_URL": settings.database_url,
        "SLACK_BOT_TOKEN": standin.workspace.bot_token,
        "SLACK_API_URL": standin.api_url,
        # The real clock decides the period: whatever the hour, its prompt counts as on time.
        "PULSE_GRACE_MINUTES": str(7 * 24 * 60),
    }
    first = _cli(env, tmp_path)
    assert first.returncode == 0, first.stderr
    second = _cli(env, tmp_path)  # safe to run twice
    assert second.returncode == 0, second.stderr
    assert len(standin.calls("chat.postMessage")) == 1
    with Session(plan) as session:
        assert session.exec(select(PulseRequest)).one().state == PulseState.SENT


def test_planpulse_tick_with_a_revoked_token_says_so_once_and_exits_two(
    plan, settings, standin, tmp_path
):
    standin.revoke_token()
    env = {
        "DATABASE_URL": settings.database_url,
        "SLACK_BOT_TOKEN": standin.workspace.bot_token,
        "SLACK_API_URL": standin.api_url,
    }
    result = _cli(env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("Slack refused the bot token (token_revoked on") == 1
    assert "Traceback" not in result.stderr and standin.workspace.bot_token not in result.stderr
    assert len(standin.calls()) == 1  # the first refusal, then nothing more
    with Session(plan) as session:
        assert session.exec(select(PulseRequest)).all() == []


def test_planpulse_tick_now_runs_as_of_that_instant(plan, settings, standin, tmp_path):
    env = {
        "DATABASE_URL": settings.database_url,
        "SLACK_BOT_TOKEN": standin.workspace.bot_token,
        "SLACK_API_URL": standin.api_url,
    }
    result = _cli(env, tmp_path, "--now", "2027-01-04T15:00Z")
    assert result.returncode == 0, result.stderr
    with Session(plan) as session:
        pulse = session.exec(select(PulseRequest)).one()
    # Alice's Monday 09:00 in New York: the period of the instant given, not of today.
    assert pulse.due_at == datetime(2027, 1, 4, 14, tzinfo=UTC) and pulse.state == PulseState.SENT


def test_planpulse_tick_now_wants_an_offset(database_url, tmp_path):
    result = _cli({"DATABASE_URL": database_url}, tmp_path, "--now", "2027-01-04T15:00")
    assert result.returncode == 2
    assert "UTC offset" in result.stderr and "Traceback" not in result.stderr


def test_planpulse_tick_without_a_token_says_what_to_set(database_url, tmp_path):
    result = _cli({"DATABASE_URL": database_url}, tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_a_daily_job_left_unfinished_by_a_killed_process_runs_again_after_the_lease(
    engine, services
):
    """Found by the crash-safety test: SIGKILL during the directory sync skips its release, and
    the day's run stayed claimed forever (no channels resolved, no requests posted that day)."""
    from storage import jobs
    from storage.db import session_scope

    with session_scope(engine) as session:  # the killed process's claim, never finished
        jobs.claim_job_run(session=session, job="j", period="p", now=MONDAY, lease=tick.JOB_LEASE)
    runs: list[datetime] = []

    def job(services, now):
        runs.append(now)
        return "ok"

    soon = MONDAY + tick.JOB_LEASE - timedelta(seconds=1)
    assert run_once_per_period(services, job="j", period="p", now=soon, run=job) is None
    later = MONDAY + tick.JOB_LEASE + timedelta(minutes=1)
    assert run_once_per_period(services, job="j", period="p", now=later, run=job) == "ok"
    assert run_once_per_period(services, job="j", period="p", now=later, run=job) is None
    assert runs == [later]
    with Session(engine) as session:
        [run] = session.exec(select(JobRun)).all()
    assert run.finished_at == later


def test_people_imported_since_the_last_sync_are_linked_by_the_next_tick(plan, services, standin):
    run_tick(services, MONDAY)  # today's directory sync is done
    with Session(plan) as session:
        newcomer = Person(email="newcomer@northwind.example", name="Newcomer")  # no Slack ID yet
        session.add(newcomer)
        session.commit()
        newcomer_id = newcomer.id
    standin.workspace.add_user(
        User(id="UNEW", name="newcomer", email="newcomer@northwind.example", tz="Asia/Tokyo")
    )
    report = run_tick(services, MONDAY + timedelta(minutes=1))
    assert report.results["directory"] is None  # not the daily sync: the per-tick lookup
    assert report.results["new_people"] == 1
    with Session(plan) as session:
        linked = session.get(Person, newcomer_id)
        assert (linked.slack_id, linked.tz) == ("UNEW", "Asia/Tokyo")


def test_processed_event_ids_are_pruned_once_a_day(plan, services, standin, directory_syncs):
    with Session(plan) as session:
        session.add(ProcessedEvent(event_id="Ev_old", received_at=MONDAY - timedelta(days=2)))
        session.add(ProcessedEvent(event_id="Ev_new", received_at=MONDAY - timedelta(hours=1)))
        session.commit()
    assert run_tick(services, MONDAY).results["event_pruning"] == 1
    with Session(plan) as session:
        assert [e.event_id for e in session.exec(select(ProcessedEvent))] == ["Ev_new"]
    assert run_tick(services, MONDAY + timedelta(hours=1)).results["event_pruning"] is None
