"""The in-process scheduler of `serve`: one fixed job, coalesced, never overlapping, running the tick."""

from __future__ import annotations

from sqlmodel import Session

from scheduler.runner import TICK_JOB_ID, start_scheduler
from tests import factories


def test_scheduler_runs_the_tick_at_start_and_is_configured_for_replicas(engine, services, standin):
    with Session(engine) as session:
        factories.plan_settings(session)
        alice = factories.person(session, slack_id="UALICE", tz="America/New_York")
        factories.initiative(session, owner=alice, team=factories.team(session, lead=alice))
        session.commit()
    scheduler = start_scheduler(services)
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
