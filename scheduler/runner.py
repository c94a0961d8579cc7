"""The in-process clock of `planpulse serve`: an APScheduler job that runs the tick."""

from __future__ import annotations

import logging

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import utcnow
from bot.services import Services
from scheduler.tick import run_tick

log = logging.getLogger(__name__)

TICK_JOB_ID = "planpulse-tick"


def _tick(services: Services) -> None:
    report = run_tick(services, utcnow())
    if not report.ok:
        log.warning("Tick finished with failed steps: %s", ", ".join(report.failed))


def start_scheduler(services: Services) -> BackgroundScheduler:
    """Start the tick every `settings.tick_seconds`.

    The job store lives in memory and every replica runs its own scheduler: APScheduler 3 cannot
    share a store between processes, and does not need to, since the database decides what is
    due and claims it. `coalesce` folds missed runs into one, `max_instances=1` keeps a slow tick
    from overlapping the next, and a run more than one interval late is skipped (the next one
    does the same work).
    """
    seconds = services.settings.tick_seconds
    scheduler = BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": seconds},
        timezone="UTC",
    )
    scheduler.add_job(
        _tick,
        trigger=IntervalTrigger(seconds=seconds, timezone="UTC"),
        args=[services],
        id=TICK_JOB_ID,
        name="PlanPulse tick",
        replace_existing=True,
        next_run_time=utcnow(),  # first tick at start-up, not one interval later
    )
    scheduler.start()
    log.info("Scheduler started: tick every %s s", seconds)
    return scheduler
