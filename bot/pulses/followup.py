"""Reminders and escalation for unanswered pulses: each at most once, in working hours, in time.

A stage is claimed with a conditional UPDATE (`reminded_at IS NULL AND answered_at IS NULL`)
before its message is posted, so two ticks cannot both send it and an answer stops it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.pulses import messages
from bot.pulses.schedule import WorkingHours, is_away
from bot.services import Services
from bot.slack.errors import InvalidAuth, SlackError, SlackUnavailable
from bot.timezones import local_date, person_zone
from storage import pulses as queries
from storage.db import session_scope
from storage.models import Initiative, Person, PulseRequest
from storage.plan import mark_dark, plan_settings

log = logging.getLogger(__name__)

# One header block plus one per initiative stays within Slack's 50 blocks a message.
MAX_ESCALATIONS_PER_MESSAGE = 40
REMINDED = "reminded"
ESCALATED = "escalated"


@dataclass
class FollowUpReport:
    reminders: int = 0  # reminder messages posted
    reminded: int = 0  # pulses they covered
    escalations: int = 0  # DMs to team leads
    escalated: int = 0  # pulses escalated (initiatives flagged dark)


def _worth_retrying(exc: SlackError) -> bool:
    """Errors after which nothing was posted and a later tick may succeed.

    A timeout or a connection reset while waiting may hide a delivered message, and a gone
    user or DM stays gone: the claim stays then (at most once, and no failing post every tick).
    A 5xx, a 429 or a connection that failed before sending posted nothing: retried.
    """
    if isinstance(exc, InvalidAuth):
        return True
    return isinstance(exc, SlackUnavailable) and not exc.maybe_delivered


def send_follow_ups(services: Services, now: datetime) -> FollowUpReport:
    """Send the reminders, then the escalations, that are due at `now`."""
    hours = WorkingHours.parse(services.settings.working_hours, services.settings.working_days)
    report = FollowUpReport()
    send_reminders(services, now, hours, report)
    send_escalations(services, now, hours, report)
    return report


def send_reminders(
    services: Services, now: datetime, hours: WorkingHours, report: FollowUpReport
) -> None:
    """One reply in each prompt's thread, naming the initiatives still unanswered."""
    cutoff = now - timedelta(hours=services.settings.reminder_after_hours)
    with session_scope(services.engine) as session:
        plan = plan_settings(session=session)
        candidates = queries.reminder_candidates(session=session, sent_before=cutoff, now=now)
    threads: dict[tuple[str, str], list[tuple[PulseRequest, Initiative, Person]]] = defaultdict(
        list
    )
    for pulse, initiative, owner in candidates:
        tz = person_zone(owner.tz, plan.timezone)
        if hours.contains(tz, now) and not is_away(owner, local_date(now, tz)):
            threads[(str(pulse.channel_id), str(pulse.message_ts))].append(
                (pulse, initiative, owner)
            )
    for (channel, thread_ts), items in threads.items():
        with session_scope(services.engine) as session:
            won = set(
                queries.claim_follow_up(
                    session=session,
                    stage=REMINDED,
                    pulse_ids=[p.id for p, _, _ in items if p.id is not None],
                    now=now,
                )
            )
        mine = [(p, i) for p, i, _ in items if p.id in won]
        if not mine:
            continue
        ends = min(p.next_due_at or now for p, _ in mine)
        rendered = messages.reminder_message([i.title for _, i in mine], ends)
        try:
            services.slack.post_message(
                channel=channel, thread_ts=thread_ts, text=rendered.text, blocks=rendered.blocks
            )
        except SlackError as exc:
            log.warning("Reminder in %s failed: %s", channel, exc.code)
            if _worth_retrying(exc):
                with session_scope(services.engine) as session:
                    queries.unclaim_follow_up(
                        session=session, stage=REMINDED, pulse_ids=sorted(won), now=now
                    )
            continue
        report.reminders += 1
        report.reminded += len(mine)


def _lead_reachable(lead: Person) -> bool:
    return lead.active and bool(lead.slack_id)


def send_escalations(
    services: Services, now: datetime, hours: WorkingHours, report: FollowUpReport
) -> None:
    """A DM to each team lead naming their silent initiatives; those initiatives go dark."""
    cutoff = now - timedelta(hours=services.settings.escalate_after_hours)
    with session_scope(services.engine) as session:
        plan = plan_settings(session=session)
        candidates = queries.escalation_candidates(session=session, reminded_before=cutoff, now=now)
    by_lead: dict[int | None, list[tuple[PulseRequest, Initiative, Person]]] = defaultdict(list)
    leads: dict[int | None, Person | None] = {}
    for pulse, initiative, owner, lead in candidates:
        if is_away(owner, local_date(now, person_zone(owner.tz, plan.timezone))):
            continue  # out of office since the prompt: not "gone dark"
        if lead is not None and _lead_reachable(lead):
            if not hours.contains(person_zone(lead.tz, plan.timezone), now):
                continue  # waits for the lead's next working hour
            key: int | None = lead.id
        else:
            key = None  # nobody to tell: the initiative still goes dark, on time
        by_lead[key].append((pulse, initiative, owner))
        leads[key] = lead if key is not None else None
    for key, items in by_lead.items():
        for start in range(0, len(items), MAX_ESCALATIONS_PER_MESSAGE):
            chunk = items[start : start + MAX_ESCALATIONS_PER_MESSAGE]
            _escalate(services, leads[key], chunk, now, report)


def _escalate(
    services: Services,
    lead: Person | None,
    items: list[tuple[PulseRequest, Initiative, Person]],
    now: datetime,
    report: FollowUpReport,
) -> None:
    with session_scope(services.engine) as session:
        won = set(
            queries.claim_follow_up(
                session=session,
                stage=ESCALATED,
                pulse_ids=[p.id for p, _, _ in items if p.id is not None],
                now=now,
            )
        )
        mine = [(p, i, o) for p, i, o in items if p.id in won]
        mark_dark(session=session, initiative_ids=[i.id for _, i, _ in mine if i.id], now=now)
    if not mine:
        return
    report.escalated += len(mine)
    if lead is None:
        log.warning(
            "Initiatives %s went dark but their team has no reachable lead to tell",
            ", ".join(i.key for _, i, _ in mine),
        )
        return
    rendered = messages.escalation_message(
        [
            {
                "title": initiative.title,
                "key": initiative.key,
                "owner": owner.slack_id,
                "sent_at": pulse.sent_at,
                "reminded_at": pulse.reminded_at,
                "ends": pulse.next_due_at,
            }
            for pulse, initiative, owner in mine
        ]
    )
    try:
        services.slack.post_message(
            channel=str(lead.slack_id), text=rendered.text, blocks=rendered.blocks
        )
    except SlackError as exc:
        log.warning("Escalation to %s failed: %s", lead.slack_id, exc.code)
        if _worth_retrying(exc):
            with session_scope(services.engine) as session:
                queries.unclaim_follow_up(
                    session=session, stage=ESCALATED, pulse_ids=sorted(won), now=now
                )
        return
    report.escalations += 1
