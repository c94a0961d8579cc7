"""One detection pass: findings → alert rows → Slack, each alert raised once, updated in place, resolved once.

The database decides who acts: a raise is an insert that skips on the open key, a post is a
claimed row, an update or a resolve is a conditional UPDATE. So two ticks at once, a retry after
a 429 or a crash between two steps never post an alert twice. A pass in which nothing changed
compares fingerprints only and calls Slack for nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.alerts import messages
from bot.alerts.conditions import Finding, find_problems
from bot.services import Services
from bot.slack.errors import SlackError, SlackUnavailable
from bot.slack.gateway import MessageTag, PostedMessage
from storage import alerts as queries
from storage.channels import clear_channel_problem, record_channel_problem
from storage.db import session_scope
from storage.models import Alert
from templates.ids import MessageEvents

log = logging.getLogger(__name__)

# A claim older than this was left by a process that died between claiming and posting.
CLAIM_LEASE = timedelta(minutes=10)

# Slack's answers that mean "the bot cannot post to this channel", not "try again".
CHANNEL_PROBLEMS = {
    "not_in_channel": "not_member",
    "channel_not_found": "not_found",
    "is_archived": "archived",
}


@dataclass
class DetectionReport:
    raised: int = 0
    posted: int = 0  # messages of their own
    summarised: int = 0  # listed in a channel's summary message instead (the noise budget)
    summaries: int = 0  # summary messages posted
    thread_lines: int = 0  # one per update or resolution of a posted alert
    updated: int = 0
    resolved: int = 0
    told: int = 0  # direct messages
    unposted: int = 0  # kept for the next pass: the channel refused the post


def run_detection(services: Services, now: datetime) -> DetectionReport:
    """Evaluate every condition at `now` and bring the alerts (and their messages) in line."""
    report = DetectionReport()
    with session_scope(services.engine) as session:
        findings = {f.key: f for f in find_problems(session, now)}
        current = queries.open_alert_index(session=session)  # open key → (id, shown)
        for key, finding in findings.items():
            if key in current:
                continue
            raised = queries.raise_alert(
                session=session,
                kind=finding.kind,
                subject=finding.subject,
                facts=finding.facts,
                shown=finding.shown,
                channel_id=finding.channel,
                now=now,
            )
            report.raised += raised is not None
        changed_ids = {
            alert_id: key
            for key, (alert_id, was_shown) in current.items()
            if key in findings and was_shown != findings[key].shown
        }
        cleared_ids = [alert_id for key, (alert_id, _) in current.items() if key not in findings]
        # Only the few alerts that need Slack are read whole.
        loaded = queries.alerts_by_ids(session=session, alert_ids=[*changed_ids, *cleared_ids])
    changed = [(loaded[i], findings[key]) for i, key in changed_ids.items() if i in loaded]
    cleared = [loaded[i] for i in cleared_ids if i in loaded]
    _update(services, changed, now, report)
    _resolve(services, cleared, now, report)
    _post_unposted(services, findings, now, report)
    return report


# --- posting --------------------------------------------------------------------------------


def _post_unposted(
    services: Services, findings: dict[str, Finding], now: datetime, report: DetectionReport
) -> None:
    """Post what is open and not yet in Slack: a few per channel, the rest in one summary."""
    with session_scope(services.engine) as session:
        waiting = queries.unposted_alerts(session=session)
    by_channel: dict[str | None, list[Alert]] = defaultdict(list)
    for alert in waiting:
        by_channel[alert.channel_id].append(alert)
    budget = services.settings.alerts_per_channel_per_tick
    for channel, alerts in by_channel.items():
        with session_scope(services.engine) as session:
            claimed = set(
                queries.claim_for_posting(
                    session=session,
                    alert_ids=[a.id for a in alerts if a.id is not None],
                    now=now,
                    lease=CLAIM_LEASE,
                )
            )
        taken = [a for a in alerts if a.id in claimed]
        mine = _not_already_posted(services, taken, channel, now) if channel else taken
        if not taken:
            continue
        if channel is None:  # nowhere to post (DM-only kinds): only the people are told
            _mark_posted_nowhere(services, mine, now)
        elif mine:
            _post_to_channel(services, mine, channel, budget, now, report)
    _notify_posted(services, findings, now, report)


def _notify_posted(
    services: Services, findings: dict[str, Finding], now: datetime, report: DetectionReport
) -> None:
    """Tell the people of every posted alert not yet told: those just posted, and those a
    process that died after the post (recorded, or found in Slack since) never got to."""
    with session_scope(services.engine) as session:
        waiting = queries.posted_untold_alerts(session=session)
    for alert in waiting:
        finding = findings.get(str(alert.open_key))
        if finding is not None:
            _notify(services, alert, finding, now, report)


def _post_to_channel(
    services: Services,
    alerts: list[Alert],
    channel: str,
    budget: int,
    now: datetime,
    report: DetectionReport,
) -> None:
    """The first `budget` alerts as messages of their own, the rest in one summary.

    A channel that refuses a post is tried once per pass: the alerts left are given back for
    the next one, rather than each failing in turn.
    """
    own, rest = alerts[:budget], alerts[budget:]
    for index, alert in enumerate(own):
        if not _post_one(services, alert, channel, now, report):
            left = [a.id for a in [*own[index + 1 :], *rest] if a.id is not None]
            with session_scope(services.engine) as session:
                queries.release_claims(session=session, alert_ids=left)
            report.unposted += len(left)
            return
    if rest:
        _post_summary(services, rest, channel, now, report)


def _not_already_posted(
    services: Services, alerts: list[Alert], channel: str, now: datetime
) -> list[Alert]:
    """A claim taken over from a process that died may have been posted: Slack's history says."""
    stale = [a for a in alerts if a.claimed_at is not None]
    if not stale:
        return alerts
    oldest = min(a.claimed_at for a in stale if a.claimed_at is not None)
    tagged = services.slack.find_tagged_messages(
        channel=channel, event_type=MessageEvents.ALERT, oldest=oldest - CLAIM_LEASE
    )
    found: dict[int, tuple[str, bool]] = {}
    for message in tagged:
        ids = [int(i) for i in str(message.payload.get("alert_ids", "")).split(",") if i.isdigit()]
        for alert_id in ids:
            found.setdefault(alert_id, (message.ts, message.payload.get("summary") == "yes"))
    recovered = [a for a in stale if a.id in found]
    with session_scope(services.engine) as session:
        for alert in recovered:
            assert alert.id is not None
            ts, in_summary = found[alert.id]
            alert.channel_id, alert.message_ts, alert.in_summary = channel, ts, in_summary
            queries.mark_posted(
                session=session,
                alert_ids=[alert.id],
                channel_id=channel,
                ts=ts,
                in_summary=in_summary,
                now=now,
            )
    return [a for a in alerts if a not in recovered]


def _post_one(
    services: Services, alert: Alert, channel: str, now: datetime, report: DetectionReport
) -> bool:
    assert alert.id is not None
    rendered = messages.alert_message(services, alert.kind, alert.facts, resolved=False)
    posted = _post(services, [alert], channel, rendered, now, summary=False)
    if posted is None:
        report.unposted += 1
        return False
    with session_scope(services.engine) as session:
        queries.mark_posted(
            session=session,
            alert_ids=[alert.id],
            channel_id=posted.channel,
            ts=posted.ts,
            in_summary=False,
            now=now,
        )
    alert.channel_id, alert.message_ts = posted.channel, posted.ts
    report.posted += 1
    return True


def _post_summary(
    services: Services, alerts: list[Alert], channel: str, now: datetime, report: DetectionReport
) -> None:
    """Over the noise budget: one message lists them all; each stays an alert row of its own."""
    rendered = messages.summary_message(alerts, plan_command=services.settings.plan_command)
    posted = _post(services, alerts, channel, rendered, now, summary=True)
    if posted is None:
        report.unposted += len(alerts)
        return
    with session_scope(services.engine) as session:
        queries.mark_posted(
            session=session,
            alert_ids=[a.id for a in alerts if a.id is not None],
            channel_id=posted.channel,
            ts=posted.ts,
            in_summary=True,
            now=now,
        )
    for alert in alerts:
        alert.channel_id, alert.message_ts, alert.in_summary = posted.channel, posted.ts, True
    report.summarised += len(alerts)
    report.summaries += 1


def _post(
    services: Services,
    alerts: Sequence[Alert],
    channel: str,
    rendered: messages.Rendered,
    now: datetime,
    *,
    summary: bool,
) -> PostedMessage | None:
    """Post one alert message; a channel the bot cannot post to is recorded and the claim given back."""
    ids = [a.id for a in alerts if a.id is not None]
    listed = {"alert_ids": ",".join(map(str, ids)), "summary": "yes" if summary else "no"}
    tag = MessageTag(MessageEvents.ALERT, listed)
    try:
        posted = services.slack.post_message(
            channel=channel, text=rendered.text, blocks=rendered.blocks, tag=tag
        )
    except SlackError as exc:
        problem = CHANNEL_PROBLEMS.get(exc.code)
        with session_scope(services.engine) as session:
            if not (isinstance(exc, SlackUnavailable) and exc.maybe_delivered):
                queries.release_claims(session=session, alert_ids=ids)
            # else it may be in the channel: the claim stays, and once its lease is over the
            # next pass reads the channel's history before posting (`_not_already_posted`).
            if problem is not None:
                record_channel_problem(
                    session=session, channel_id=channel, problem=problem, now=now
                )
        if problem is None:
            raise
        log.warning("Cannot post alerts to %s (%s); kept for the next tick", channel, exc.code)
        return None
    with session_scope(services.engine) as session:  # it went through: the channel is fine
        clear_channel_problem(session=session, channel_id=channel, now=now)
    return posted


def _mark_posted_nowhere(services: Services, alerts: Iterable[Alert], now: datetime) -> None:
    with session_scope(services.engine) as session:
        queries.mark_posted(
            session=session,
            alert_ids=[a.id for a in alerts if a.id is not None],
            channel_id="",
            ts="",
            in_summary=False,
            now=now,
        )


def _notify(
    services: Services, alert: Alert, finding: Finding, now: datetime, report: DetectionReport
) -> None:
    """The people an alert names hear it once, by DM, with a link to its channel message."""
    if alert.id is None:
        return
    with session_scope(services.engine) as session:
        # Claimed even with nobody to tell, so the alert is not looked at again.
        if not queries.claim_notification(session=session, alert_id=alert.id, now=now):
            return
    if not finding.notify:
        return
    link = (
        services.slack.permalink(channel=alert.channel_id, ts=alert.message_ts)
        if alert.channel_id and alert.message_ts
        else None
    )
    rendered = messages.direct_message(services, alert.kind, alert.facts, link=link)
    for person in finding.notify:
        try:
            services.slack.post_message(channel=person, text=rendered.text, blocks=rendered.blocks)
            report.told += 1
        except SlackError as exc:
            # Told once means once: a person Slack cannot reach is an alert of its own.
            log.warning("Could not DM %s about alert %s: %s", person, alert.id, exc.code)


# --- changes --------------------------------------------------------------------------------


def _update(
    services: Services,
    changed: list[tuple[Alert, Finding]],
    now: datetime,
    report: DetectionReport,
) -> None:
    """An open alert whose facts changed: its message redrawn in place, one line in its thread."""
    for alert, finding in changed:
        assert alert.id is not None
        before = dict(alert.facts)
        with session_scope(services.engine) as session:
            won = queries.change_facts(
                session=session,
                alert_id=alert.id,
                shown_before=alert.shown,
                facts=finding.facts,
                shown=finding.shown,
                now=now,
            )
        if not won:
            continue
        report.updated += 1
        alert.facts = finding.facts
        if alert.message_ts:
            line = messages.change_line(alert.kind, before, finding.facts)
            report.thread_lines += _redraw(services, alert, line)


def _resolve(
    services: Services, cleared: list[Alert], now: datetime, report: DetectionReport
) -> None:
    """A condition that cleared: the alert closed, its message says so (no buttons left)."""
    for alert in cleared:
        assert alert.id is not None
        with session_scope(services.engine) as session:
            if not queries.resolve(session=session, alert_id=alert.id, now=now):
                continue
            why = messages.resolution_facts(session, alert)
        report.resolved += 1
        alert.state = "resolved"
        if alert.message_ts:
            line = messages.resolution_line(alert.kind, alert.facts, why)
            report.thread_lines += _redraw(services, alert, line)


def _redraw(services: Services, alert: Alert, thread_line: str) -> bool:
    """chat.update the message showing `alert` (its own, or its summary), then say why in the thread."""
    channel, ts = str(alert.channel_id), str(alert.message_ts)
    if alert.in_summary:
        with session_scope(services.engine) as session:
            listed = queries.alerts_in_message(session=session, channel_id=channel, ts=ts)
        rendered = messages.summary_message(listed, plan_command=services.settings.plan_command)
    else:
        rendered = messages.alert_message(
            services, alert.kind, alert.facts, resolved=alert.state == "resolved"
        )
    try:
        services.slack.update_message(
            channel=channel, ts=ts, text=rendered.text, blocks=rendered.blocks
        )
        services.slack.post_message(channel=channel, text=thread_line, thread_ts=ts)
    except SlackError as exc:
        # The row already says what changed; the next change redraws the message whole.
        log.warning("Could not update alert %s in %s: %s", alert.id, channel, exc.code)
        return False
    return True
