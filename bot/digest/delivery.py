"""The weekly digest's tick step: one digest per period per recipient, whoever ticks and however often.

The cadence is the plan's `digest` cron in the plan's timezone; a digest that could not go out
at its fire follows the pulses' late-prompt rule (`PromptTiming`). Each (period, recipient) is
claimed in `digest_delivery`: the parent message, then its thread replies in order, then the
charts of the KPIs off track. A process that dies mid-way leaves a claim that goes stale after
`CLAIM_LEASE`; whoever takes it over asks Slack what was already posted and carries on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.charts import KpiChart, off_track_kpi_charts
from bot.decisions.opening import CHANNEL_PROBLEMS, decision_channel
from bot.digest.content import build_digest
from bot.pulses.schedule import Period, PromptTiming, current_period, valid_cron
from bot.services import Services
from bot.slack.errors import SlackError
from bot.slack.gateway import MessageTag
from bot.timezones import local_date, plan_zone
from storage import digest as queries
from storage.channels import clear_channel_problem, record_channel_problem
from storage.db import session_scope
from storage.models import DigestDelivery, DigestTo, PlanSettings
from storage.people import leaders
from storage.plan import plan_settings
from templates import render_mrkdwn
from templates.digest import digest_messages
from templates.ids import MessageEvents

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=10)
CHANNEL_RECIPIENT = "channel"


@dataclass
class DigestReport:
    period: str | None = None  # the period being sent, when one is due
    posted: int = 0  # digests whose parent message went out in this pass
    recovered: int = 0  # parents found in Slack after a crash, not posted again
    replies: int = 0
    charts: int = 0
    unposted: int = 0  # kept for a later tick (a refused channel, Slack down)
    no_recipient: bool = False  # no decision channel resolved, or no leader in Slack


@dataclass(frozen=True)
class Recipient:
    key: str  # `digest_delivery.recipient`
    channel: str  # a channel ID, or a leader's user ID (Slack delivers to the app's DM)


@dataclass(frozen=True)
class Rendered:
    parent: dict[str, Any]
    parts: list[dict[str, Any] | KpiChart]  # thread replies, then charts, in posting order
    day: Any


def digest_period(
    plan: PlanSettings, first_activity: datetime | None, now: datetime, timing: PromptTiming
) -> Period | None:
    """The period whose digest is due at `now`, or None.

    None before the plan's first initiative was active (no digest covers a week the plan was
    not there for), with an unusable cron, or when the pulses' late-prompt rule says wait.
    """
    if not valid_cron(plan.digest) or first_activity is None:
        return None
    tz = plan_zone(plan.timezone)
    period = current_period(plan.digest, tz, now)
    if period.start < first_activity:
        return None
    return period if timing.may_prompt(period, tz, now) else None


def recipients(session: Session, plan: PlanSettings) -> list[Recipient]:
    if plan.digest_to == DigestTo.LEADERS:
        return [
            Recipient(f"person:{person.id}", str(person.slack_id))
            for person in leaders(session=session)
        ]
    channel = decision_channel(session)
    return [Recipient(CHANNEL_RECIPIENT, channel)] if channel else []


def send_digests(services: Services, now: datetime) -> DigestReport:
    """Send the digest of the period due at `now` to each recipient that has not had it."""
    report = DigestReport()
    timing = PromptTiming.from_settings(services.settings)
    with session_scope(services.engine) as session:
        plan = plan_settings(session=session)
        period = digest_period(plan, queries.first_activity(session=session), now, timing)
        if period is None:
            return report
        wanted = recipients(session, plan)
    report.period = period.key
    report.no_recipient = not wanted
    rendered: Rendered | None = None
    for recipient in wanted:
        with session_scope(services.engine) as session:
            claim = queries.claim_delivery(
                session=session,
                period=period.key,
                recipient=recipient.key,
                now=now,
                lease=CLAIM_LEASE,
            )
        if claim is None:
            continue
        if rendered is None:  # drawn once, for every recipient of this pass
            rendered = _render(services, period, now)
        _deliver(services, claim, recipient, rendered, now, report)
    return report


def _render(services: Services, period: Period, now: datetime) -> Rendered:
    with session_scope(services.engine) as session:
        digest = build_digest(session, period.start)
        messages = digest_messages(digest, now)
        day = local_date(period.start, plan_zone(plan_settings(session=session).timezone))
        charts = off_track_kpi_charts(session, day)
    return Rendered(parent=messages.parent, parts=[*messages.thread, *charts], day=day)


def _deliver(
    services: Services,
    claim: queries.DeliveryClaim,
    recipient: Recipient,
    rendered: Rendered,
    now: datetime,
    report: DigestReport,
) -> None:
    delivery = claim.delivery
    assert delivery.id is not None
    try:
        channel, ts = _parent(services, claim, recipient, rendered, now, report)
        done = delivery.thread_posted
        if claim.stale_since is not None:
            done = max(done, _replies_in_slack(services, delivery, channel, ts))
        for index, part in enumerate(rendered.parts[done:], start=done):
            _post_part(services, delivery, channel, ts, index, part, rendered)
            report.charts += isinstance(part, KpiChart)
            report.replies += not isinstance(part, KpiChart)
            with session_scope(services.engine) as session:
                queries.record_thread_progress(
                    session=session, delivery_id=delivery.id, posted=index + 1
                )
    except SlackError as exc:
        log.warning(
            "Digest %s for %s not sent (%s); a tick after %s tries again",
            delivery.period,
            recipient.key,
            exc.code,
            CLAIM_LEASE,
        )
        with session_scope(services.engine) as session:
            queries.record_failure(session=session, delivery_id=delivery.id, error=exc.code)
            refused = CHANNEL_PROBLEMS.get(exc.code)
            if refused is not None and recipient.key == CHANNEL_RECIPIENT:
                record_channel_problem(
                    session=session, channel_id=recipient.channel, problem=refused, now=now
                )
        report.unposted += 1
        return
    with session_scope(services.engine) as session:
        queries.finish_delivery(session=session, delivery_id=delivery.id, now=now)


def _tag(delivery: DigestDelivery) -> MessageTag:
    return MessageTag(
        MessageEvents.DIGEST, {"digest_id": str(delivery.id), "period": delivery.period}
    )


def _parent(
    services: Services,
    claim: queries.DeliveryClaim,
    recipient: Recipient,
    rendered: Rendered,
    now: datetime,
    report: DigestReport,
) -> tuple[str, str]:
    """The parent message's (channel, ts): already recorded, found in Slack, or posted now."""
    delivery = claim.delivery
    assert delivery.id is not None
    if delivery.channel_id and delivery.message_ts:
        return delivery.channel_id, delivery.message_ts
    if claim.stale_since is not None:
        found = _parent_in_slack(services, delivery, recipient, claim.stale_since)
        if found is not None:
            with session_scope(services.engine) as session:
                queries.record_parent(
                    session=session,
                    delivery_id=delivery.id,
                    channel_id=found[0],
                    ts=found[1],
                    now=now,
                )
            report.recovered += 1
            return found
    posted = services.slack.post_message(
        channel=recipient.channel,
        text=rendered.parent["text"],
        blocks=rendered.parent["blocks"],
        tag=_tag(delivery),
    )
    with session_scope(services.engine) as session:
        queries.record_parent(
            session=session,
            delivery_id=delivery.id,
            channel_id=posted.channel,
            ts=posted.ts,
            now=now,
        )
        if recipient.key == CHANNEL_RECIPIENT:
            clear_channel_problem(session=session, channel_id=posted.channel, now=now)
    report.posted += 1
    return posted.channel, posted.ts


def _parent_in_slack(
    services: Services, delivery: DigestDelivery, recipient: Recipient, since: datetime
) -> tuple[str, str] | None:
    channel = recipient.channel
    if recipient.key != CHANNEL_RECIPIENT:
        channel = services.slack.open_dm(recipient.channel)  # history needs the D… ID
    for message in services.slack.find_tagged_messages(
        channel=channel, event_type=MessageEvents.DIGEST, oldest=since - CLAIM_LEASE
    ):
        if message.payload.get("digest_id") == str(delivery.id):
            return channel, message.ts
    return None


def _replies_in_slack(services: Services, delivery: DigestDelivery, channel: str, ts: str) -> int:
    """How many text replies a process that died had posted in the thread (charts carry no tag)."""
    parts = [
        int(part)
        for message in services.slack.find_tagged_replies(
            channel=channel, thread_ts=ts, event_type=MessageEvents.DIGEST_PART
        )
        if message.payload.get("digest_id") == str(delivery.id)
        and str(part := message.payload.get("part", "")).isdigit()
    ]
    return max(parts) + 1 if parts else 0


def _post_part(
    services: Services,
    delivery: DigestDelivery,
    channel: str,
    ts: str,
    index: int,
    part: dict[str, Any] | KpiChart,
    rendered: Rendered,
) -> None:
    if isinstance(part, KpiChart):
        services.slack.upload_file(
            channel=channel,
            filename=part.filename,
            content=part.png,
            title=part.title,
            initial_comment=render_mrkdwn(
                "blocks/digest/chart_comment.txt.j2",
                kpi_name=part.name,
                key=part.key,
                day=rendered.day,
            ),
            thread_ts=ts,
        )
        return
    services.slack.post_message(
        channel=channel,
        text=part["text"],
        blocks=part["blocks"],
        thread_ts=ts,
        tag=MessageTag(
            MessageEvents.DIGEST_PART, {"digest_id": str(delivery.id), "part": str(index)}
        ),
    )
