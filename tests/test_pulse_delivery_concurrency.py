"""Several ticks at once (threads, and `planpulse tick` processes) never send a pulse twice."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime

from sqlmodel import Session, select

from bot.pulses.delivery import deliver_pulses
from bot.services import Services
from bot.slack.gateway import SlackGateway
from standin import User
from storage.db import make_engine
from storage.models import PulseRequest, PulseState
from tests import factories

OWNERS = 40


def _plan(engine, standin, *, initiatives_per_owner: int = 2) -> None:
    with Session(engine) as session:
        factories.plan_settings(session)
        lead = factories.person(session, slack_id="UCIO", tz="Asia/Tokyo")
        team = factories.team(session, lead=lead)
        for n in range(OWNERS):
            uid = f"UCONC{n:03d}"
            tz = ("America/New_York", "America/Los_Angeles", "Asia/Tokyo")[n % 3]
            standin.workspace.add_user(User(id=uid, name=f"owner{n}", tz=tz))
            owner = factories.person(session, slack_id=uid, tz=tz)
            for _ in range(initiatives_per_owner):
                factories.initiative(session, owner=owner, team=team)
        session.commit()


# Owners in three zones are all due at one moment only if no prompt counts as late: these tests
# are about racing ticks, not about the late-prompt rule (tests/test_pulse_timing.py).
A_WEEK_OF_GRACE = 7 * 24 * 60


def _on_time(settings):
    return settings.model_copy(update={"pulse_grace_minutes": A_WEEK_OF_GRACE})


def _delivered(standin) -> Counter[str]:
    return Counter(c.params["channel"] for c in standin.calls("chat.postMessage") if c.ok)


def _concurrent_ticks(settings, now: datetime, workers: int) -> list[BaseException]:
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run() -> None:
        engine = make_engine(settings.database_url)
        services = Services(settings, engine, SlackGateway.from_settings(settings))
        try:
            barrier.wait()
            deliver_pulses(services, now)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _assert_each_owner_once(engine, standin) -> None:
    delivered = _delivered(standin)
    assert len(delivered) == OWNERS
    assert set(delivered.values()) == {1}, "an owner got the same pulse twice"
    with Session(engine) as session:
        rows = session.exec(select(PulseRequest)).all()
    assert len(rows) == OWNERS * 2 and {r.state for r in rows} == {PulseState.SENT}


def test_concurrent_ticks_in_threads(engine, settings, standin):
    """Runs on SQLite, and on PostgreSQL when PLANPULSE_TEST_DATABASE_URL is set."""
    _plan(engine, standin)
    errors = _concurrent_ticks(_on_time(settings), datetime(2027, 1, 4, 18, tzinfo=UTC), workers=4)
    assert errors == []
    _assert_each_owner_once(engine, standin)


def test_concurrent_ticks_on_postgresql(postgres_base_url, engine, settings, standin):
    """Several replicas on one PostgreSQL: eight ticks race for the same 80 pulses."""
    assert engine.dialect.name == "postgresql"
    _plan(engine, standin)
    errors = _concurrent_ticks(_on_time(settings), datetime(2027, 1, 4, 18, tzinfo=UTC), workers=8)
    assert errors == []
    _assert_each_owner_once(engine, standin)


def test_planpulse_tick_processes_side_by_side(engine, settings, standin, tmp_path):
    """Three `planpulse tick` processes at once, as overlapping cron jobs would run them."""
    _plan(engine, standin)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SLACK_BOT_TOKEN": standin.workspace.bot_token,
        "SLACK_API_URL": standin.api_url,
        "PULSE_GRACE_MINUTES": str(A_WEEK_OF_GRACE),
    }
    env.pop("SLACK_APP_TOKEN", None)
    cli = [sys.executable, "-m", "bot.entry.cli", "tick"]
    processes = [
        subprocess.Popen(cli, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outcomes = [p.communicate(timeout=120) for p in processes]
    for process, (_, stderr) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr or b"Tick step directory failed" in stderr
    # The real clock decides the period here; whatever it is, each owner got exactly one DM.
    _assert_each_owner_once(engine, standin)
