"""One tick: everything due at `now`, once — requests, pulses, reminders, alerts, polls, digests.

Each step runs on its own so one failure (Slack down, a bad row) does not stop the others. Safe
to run twice and beside a running server: the database, not this process, decides what is done.
Once Slack has refused the bot token, the steps that need Slack are skipped, leaving their work
in the database for the process that has a valid token.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import utcnow
from bot.errors import ConfigurationError
from bot.problems import problem
from bot.services import Services
from bot.slack.errors import InvalidAuth
from storage import jobs as queries
from storage.db import session_scope
from storage.events import forget_events

log = logging.getLogger(__name__)

DIRECTORY_JOB = "directory_sync"
EVENT_PRUNING_JOB = "event_pruning"
EVENT_MEMORY = timedelta(days=1)
# A daily job's run unfinished after this long was left by a process that died; another takes
# it over. The daily jobs are idempotent, so a slow run overtaken only repeats harmless work.
JOB_LEASE = timedelta(minutes=10)


@dataclass
class TickReport:
    """What each step returned (or the error that stopped it)."""

    results: dict[str, object] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # step -> why (Slack refused the token)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def _pulses(services: Services, now: datetime) -> object:
    from bot.pulses.delivery import deliver_pulses

    return deliver_pulses(services, now)


def _follow_ups(services: Services, now: datetime) -> object:
    from bot.pulses.followup import send_follow_ups

    return send_follow_ups(services, now)


def _detection(services: Services, now: datetime) -> object:
    from bot.alerts import run_detection

    return run_detection(services, now)


def _decision_framing(services: Services, now: datetime) -> object:
    """Slips framed by their owners, their polls opened once the framing window ends, and posted."""
    from bot.decisions.slips import run_decision_framing

    return run_decision_framing(services, now)


def _poll_tallies(services: Services, now: datetime) -> object:
    """Open polls' messages redrawn where a vote was saved but not yet shown (a restart)."""
    from bot.decisions.tallies import redraw_tallies

    return redraw_tallies(services, now)


def _decision_polls(services: Services, now: datetime) -> object:
    """Polls due to close (a deadline passed, even while the bot was down), extended or posted."""
    from bot.decisions.closing import close_due_polls

    return close_due_polls(services, now)


def _decision_follow_up(services: Services, now: datetime) -> object:
    """Knock-on DMs and shift offers not yet sent after a decision; action reminders due today."""
    from bot.decisions.knock_on import decision_follow_up

    return decision_follow_up(services, now)


def _digest(services: Services, now: datetime) -> object:
    """The weekly digest, once per period to the decision channel or each leader."""
    from bot.digest.delivery import send_digests

    return send_digests(services, now)


def _daily_directory_sync(services: Services, now: datetime) -> object:
    """The people directory, once per UTC day across every process sharing the database."""
    from bot.directory import sync_people

    return run_once_per_period(
        services, job=DIRECTORY_JOB, period=now.date().isoformat(), now=now, run=sync_people
    )


def _new_people(services: Services, now: datetime) -> object:
    """People imported since the last sync get their Slack ID now, not tomorrow."""
    from bot.directory import resolve_new_people

    return resolve_new_people(services, now)


def _dependency_requests(services: Services, now: datetime) -> object:
    """Requests to provider teams for what others need from them, and those messages kept true."""
    from bot.dependencies.requests import post_dependency_requests

    return post_dependency_requests(services, now)


def _daily_event_pruning(services: Services, now: datetime) -> object:
    """Processed Slack event IDs older than a day: Slack stops retrying within minutes."""

    def prune(services: Services, now: datetime) -> int:
        with session_scope(services.engine) as session:
            return forget_events(session=session, before=now - EVENT_MEMORY)

    return run_once_per_period(
        services, job=EVENT_PRUNING_JOB, period=now.date().isoformat(), now=now, run=prune
    )


def run_once_per_period(
    services: Services,
    *,
    job: str,
    period: str,
    now: datetime,
    run: Callable[[Services, datetime], object],
) -> object:
    """Run `run` unless some process already ran it for `period`; a failed run is retried later."""
    with session_scope(services.engine) as session:
        run_id = queries.claim_job_run(
            session=session, job=job, period=period, now=now, lease=JOB_LEASE
        )
    if run_id is None:
        return None
    try:
        result = run(services, now)
    except BaseException:
        with session_scope(services.engine) as session:
            queries.release_job_run(session=session, run_id=run_id)
        raise
    with session_scope(services.engine) as session:
        queries.finish_job_run(session=session, run_id=run_id, now=now)
    return result


# Name → step, in order. Other areas add their per-tick work here (one line each). The directory
# steps come first: everything after them needs Slack IDs, and people just imported get theirs
# in this same tick.
STEPS: dict[str, Callable[[Services, datetime], object]] = {
    "directory": _daily_directory_sync,
    "new_people": _new_people,
    "dependency_requests": _dependency_requests,
    "pulses": _pulses,
    "follow_ups": _follow_ups,
    "detection": _detection,
    "decision_framing": _decision_framing,
    "poll_tallies": _poll_tallies,
    "decision_polls": _decision_polls,
    "decision_follow_up": _decision_follow_up,
    "digest": _digest,
    "event_pruning": _daily_event_pruning,
}
# Steps that never call Slack: they still run while Slack refuses the token.
OFFLINE_STEPS = frozenset({"event_pruning"})


def run_tick(services: Services, now: datetime) -> TickReport:
    """Run every step once for `now`; a failing step is logged and the next one still runs."""
    report = TickReport()
    for name, step in STEPS.items():
        revoked = services.slack.credentials.revoked
        if revoked is not None and name not in OFFLINE_STEPS:
            report.skipped[name] = revoked.code
            continue
        try:
            report.results[name] = step(services, now)
        except InvalidAuth as exc:
            # The gateway said it once, loudly; a traceback per step would only bury that line.
            report.failed[name] = f"InvalidAuth: {exc.code}"
        except Exception as exc:
            log.exception("Tick step %s failed", name)
            report.failed[name] = f"{type(exc).__name__}: {exc}"
    return report


def tick_command(args: argparse.Namespace) -> int:
    """`planpulse tick`: one run of everything due now, then exit (for cron-driven deployments)."""
    from bot.settings import SettingsProblem, load_settings
    from bot.slack.gateway import SlackGateway
    from storage.db import ensure_schema, make_engine

    settings = load_settings()
    if settings.slack_bot_token is None:
        raise ConfigurationError(problem(SettingsProblem.MISSING_BOT_CREDENTIALS))
    # No Bolt app here: a cron job needs the database and the Web API, nothing that listens.
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    services = Services(
        settings=settings, engine=engine, slack=SlackGateway.from_settings(settings)
    )
    try:
        report = run_tick(services, args.now or utcnow())
    finally:
        services.engine.dispose()
    for name, result in report.results.items():
        log.info("tick %s: %s", name, result)
    if services.slack.credentials.revoked is not None:
        # Configuration, not an outage: the refusal was logged once; exit 2 so that cron says so.
        return 2
    # A failed step is logged and retried by the next tick; cron should not page on it.
    return 0
