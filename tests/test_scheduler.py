"""The in-process scheduler of `serve`: one fixed job, coalesced, never overlapping, running the tick."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import Session

from scheduler.runner import TICK_JOB_ID, start_scheduler
from tests import factories

# These ticks run on the real clock: whatever the hour, the current prompt counts as on time
# (the late-prompt rule has its own tests, tests/test_pulse_timing.py).
A_WEEK_OF_GRACE = 7 * 24 * 60


def _on_time(services):
    return replace(
        services,
        settings=services.settings.model_copy(update={"pulse_grace_minutes": A_WEEK_OF_GRACE}),
    )


def test_scheduler_runs_the_tick_at_start_and_is_configured_for_replicas(engine, services, standin):
    with Session(engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        factories.initiative(session, owner=alice, team=factories.team(session, lead=alice))
        session.commit()
    scheduler = start_scheduler(_on_time(services))
    try:
        [job] = scheduler.get_jobs()
        assert job.id == TICK_JOB_ID
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time == services.settings.tick_seconds
        assert job.trigger.interval.total_seconds() == services.settings.tick_seconds
        # The first tick runs at start-up on the real clock: the current period's pulse goes out.
        standin.wait_for("chat.postMessage", count=1, timeout=20)
    finally:
        scheduler.shutdown(wait=True)
    assert len(standin.calls("chat.postMessage")) == 1


def test_a_cron_tick_beside_the_running_scheduler_sends_nothing_twice(
    engine, services, standin, tmp_path
):
    import os
    import subprocess
    import sys
    from collections import Counter

    from standin import User

    with Session(engine) as session:
        factories.plan_settings(session)
        lead = factories.person(session, slack_id="UCIO", tz="Asia/Tokyo")
        team = factories.team(session, lead=lead)
        for n in range(25):
            uid = f"USIDE{n:03d}"
            standin.workspace.add_user(User(id=uid, name=f"owner{n}", tz="Europe/London"))
            factories.initiative(session, owner=factories.person(session, slack_id=uid), team=team)
        session.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update(
        DATABASE_URL=services.settings.database_url,
        SLACK_BOT_TOKEN=standin.workspace.bot_token,
        SLACK_API_URL=standin.api_url,
        PULSE_GRACE_MINUTES=str(A_WEEK_OF_GRACE),
    )
    cron = subprocess.Popen(
        [sys.executable, "-m", "bot.entry.cli", "tick"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    scheduler = start_scheduler(_on_time(services))  # the server's first tick, at the same moment
    try:
        _, stderr = cron.communicate(timeout=120)
        assert cron.returncode == 0, stderr.decode()
        standin.wait_for("chat.postMessage", count=25, timeout=30)
    finally:
        scheduler.shutdown(wait=True)
    delivered = Counter(c.params["channel"] for c in standin.calls("chat.postMessage") if c.ok)
    assert len(delivered) == 25 and set(delivered.values()) == {1}
