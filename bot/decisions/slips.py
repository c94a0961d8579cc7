"""Slips: each missed, or dependency-blocked at-risk, milestone alert framed once by its owner, then polled.

A slip is one raised alert (its `slip_key` is "alert:<id>"): an open `milestone_missed` alert, or
an open `milestone_at_risk` alert one of whose reasons is a dependency feeding the milestone that
is blocked or undelivered past its day (what detection calls a blocked dependency). Its owner is
DMed once with a button to frame the options; once the framing window is over (the owner's
working hours, see bot/business_days.py), the poll opens with what is known.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot.business_days import after_working_hours
from bot.decisions.opening import (
    CLAIM_LEASE,
    PostReport,
    known_slip,
    open_poll,
    post_unposted_polls,
    tell_thread_of_slip,
)
from bot.errors import UserError
from bot.health import plan_today
from bot.services import Services
from bot.slack.errors import InvalidAuth, SlackError, SlackUnavailable
from bot.slack.gateway import MessageTag
from bot.timezones import person_zone
from storage import decisions as queries
from storage import plan
from storage.db import session_scope
from storage.models import Alert, AlertState, Milestone, MilestoneStatus, PollFraming, SlipCause
from storage.people import person_by_id
from templates import render_json_object
from templates.ids import AlertKinds, FramingIds, MessageEvents

log = logging.getLogger(__name__)

SLIP_KINDS = (AlertKinds.MILESTONE_MISSED, AlertKinds.MILESTONE_AT_RISK)


@dataclass(frozen=True)
class Slip:
    key: str
    milestone_id: int
    cause: SlipCause
    dependency_id: int | None
    seen_at: datetime  # when its alert was raised


def slip_of(alert: Alert, today: date) -> Slip | None:
    """The slip an alert is, if it is one (an at-risk alert of another cause is not)."""
    milestone_id = alert.facts.get("milestone_id")
    if alert.id is None or not isinstance(milestone_id, int):
        return None
    key = queries.slip_key(alert.id)
    if alert.kind == AlertKinds.MILESTONE_MISSED:
        return Slip(key, milestone_id, SlipCause.MISSED, None, alert.opened_at)
    for reason in alert.facts.get("reasons") or []:
        if reason.get("why") != "dependency" or not isinstance(reason.get("dependency_id"), int):
            continue
        overdue = str(reason.get("needed_by") or "9999-12-31") < today.isoformat()
        if reason.get("state") == "blocked" or overdue:
            return Slip(
                key, milestone_id, SlipCause.BLOCKED, reason["dependency_id"], alert.opened_at
            )
    return None


def raise_framings(session: Session, now: datetime, *, framing_hours: float) -> list[int]:
    """One framing per new slip (insert-or-skip on its key); the IDs of those this call raised."""
    alerts = queries.unframed_slip_alerts(session=session, kinds=SLIP_KINDS)
    if not alerts:
        return []
    settings = plan.plan_settings(session=session)
    today = plan_today(now, settings.timezone)
    holidays = [(h.start, h.end) for h in plan.holidays(session=session)]
    raised = []
    for alert in alerts:
        slip = slip_of(alert, today)
        if slip is None:
            continue
        milestone = session.get(Milestone, slip.milestone_id)
        initiative = (
            plan.initiative_by_id(session=session, initiative_id=milestone.initiative_id)
            if milestone is not None
            else None
        )
        if initiative is None:
            continue
        owner = person_by_id(session=session, person_id=initiative.owner_id)
        zone = person_zone(owner.tz if owner is not None else None, settings.timezone)
        framing_id = queries.insert_framing(
            session=session,
            values={
                "milestone_id": slip.milestone_id,
                "slip_key": slip.key,
                "cause": slip.cause.value,
                "dependency_id": slip.dependency_id,
                "slipped_at": slip.seen_at,
                "owner_id": owner.id if owner is not None and owner.slack_id else None,
                "framing_due_at": after_working_hours(now, framing_hours, zone, holidays),
            },
        )
        if framing_id is not None:
            raised.append(framing_id)
    return raised


# --- the owner's DM ---------------------------------------------------------------------------


def framing_request(session: Session, framing: PollFraming) -> dict[str, Any] | None:
    """The DM asking the owner to frame the options (None: the milestone is gone)."""
    milestone = session.get(Milestone, framing.milestone_id)
    if milestone is None:
        return None
    initiative = plan.initiative_by_id(session=session, initiative_id=milestone.initiative_id)
    today = plan_today(framing.slipped_at, plan.plan_timezone(session=session))
    known = known_slip(
        session, milestone, today, cause=framing.cause, dependency_id=framing.dependency_id
    )
    dependency = queries.dependency_with_team(session=session, dependency_id=known.dependency_id)
    return render_json_object(
        "blocks/decisions/framing_request.json.j2",
        framing=framing,
        milestone=milestone,
        initiative_title=initiative.title if initiative is not None else "",
        known=known,
        dependency={"need": dependency[0].need, "team": dependency[1]} if dependency else None,
        ids=FramingIds,
    )


def _ask_owner(services: Services, framing_id: int, now: datetime, report: FramingReport) -> None:
    with session_scope(services.engine) as session:
        framing = queries.framing_by_id(session=session, framing_id=framing_id)
        if framing is None or framing.owner_id is None:
            return
        stale = framing.claimed_at
        if not queries.claim_framing_ask(
            session=session, framing_id=framing_id, now=now, lease=CLAIM_LEASE
        ):
            return
        owner = person_by_id(session=session, person_id=framing.owner_id)
        message = framing_request(session, framing)
    if owner is None or not owner.slack_id or message is None:
        return
    try:
        if stale is not None:  # a process died holding the claim: did its DM go out?
            channel = services.slack.open_dm(owner.slack_id)
            for tagged in services.slack.find_tagged_messages(
                channel=channel, event_type=MessageEvents.FRAMING
            ):
                if str(tagged.payload.get("framing_id")) == str(framing_id):
                    with session_scope(services.engine) as session:
                        queries.mark_framing_asked(
                            session=session,
                            framing_id=framing_id,
                            channel_id=channel,
                            ts=tagged.ts,
                            now=now,
                        )
                    return
        posted = services.slack.post_message(
            channel=owner.slack_id,
            text=str(message["text"]),
            blocks=list(message["blocks"]),
            tag=MessageTag(MessageEvents.FRAMING, {"framing_id": framing_id}),
        )
    except (SlackUnavailable, InvalidAuth) as exc:
        # Slack did not say no: the claim stays, and once its lease is over a later tick looks
        # for the DM (it may have landed) before asking again.
        log.warning(
            "Asking %s to frame slip %s not confirmed: %s", owner.slack_id, framing_id, exc.code
        )
        return
    except SlackError as exc:
        # Asked once means once: an owner Slack cannot reach still gets the poll, with what is
        # known, when the framing window ends (and is an alert of its own).
        log.warning("Could not ask %s to frame slip %s: %s", owner.slack_id, framing_id, exc.code)
        with session_scope(services.engine) as session:
            queries.mark_framing_asked(
                session=session, framing_id=framing_id, channel_id=None, ts=None, now=now
            )
        return
    with session_scope(services.engine) as session:
        queries.mark_framing_asked(
            session=session, framing_id=framing_id, channel_id=posted.channel, ts=posted.ts, now=now
        )
    report.asked += 1


# --- the tick step ----------------------------------------------------------------------------


@dataclass
class FramingReport:
    raised: int = 0
    asked: int = 0
    opened: int = 0
    joined: int = 0  # slips that joined an open poll (a line in its thread)
    settled: int = 0  # slips that cleared before their poll opened
    polls: PostReport = field(default_factory=PostReport)


def run_decision_framing(services: Services, now: datetime) -> FramingReport:
    """Raise framings for new slips, ask their owners, open the polls now due, post unposted polls."""
    report = FramingReport()
    with session_scope(services.engine) as session:
        report.raised = len(
            raise_framings(session, now, framing_hours=services.settings.poll_framing_hours)
        )
        to_ask = [
            (f.id, f.milestone_id)
            for f in queries.framings_to_ask(session=session, now=now, lease=CLAIM_LEASE)
            if f.id is not None
        ]
        due = [f.id for f in queries.framings_due(session=session, now=now) if f.id is not None]
    for framing_id, milestone_id in to_ask:
        # A milestone whose poll is open already: the slip joins it, nobody is asked to frame.
        with session_scope(services.engine) as session:
            open_poll_id = _open_poll_id(session, milestone_id)
            joined = open_poll_id is not None and queries.attach_framing(
                session=session, framing_id=framing_id, poll_id=open_poll_id
            )
        if joined and open_poll_id is not None:
            report.joined += 1
            tell_thread_of_slip(services, open_poll_id, framing_id)
        elif open_poll_id is None:
            _ask_owner(services, framing_id, now, report)
    for framing_id in due:
        _open_due(services, framing_id, now, report)
    post_unposted_polls(services, now, report.polls)
    return report


def _open_poll_id(session: Session, milestone_id: int) -> int | None:
    poll = queries.open_poll_of(session=session, milestone_id=milestone_id)
    return poll.id if poll is not None else None


def _open_due(services: Services, framing_id: int, now: datetime, report: FramingReport) -> None:
    """The framing window is over: the poll opens with what is known (or the slip settled)."""
    with session_scope(services.engine) as session:
        framing = queries.framing_by_id(session=session, framing_id=framing_id)
        if framing is None or framing.poll_id is not None:
            return
        milestone = session.get(Milestone, framing.milestone_id)
        if milestone is None or not _still_slipping(session, framing, milestone):
            report.settled += queries.settle_framing(
                session=session, framing_id=framing_id, now=now
            )
            return
        try:
            opened = open_poll(session, milestone=milestone, framing=framing, now=now)
        except UserError as raced:
            # Its open poll closed between our insert and our read: the next tick opens anew.
            log.info("Slip %s not opened this tick: %s", framing_id, raced.message)
            return
    report.opened += opened.created
    if opened.joined:
        report.joined += 1
        tell_thread_of_slip(services, opened.poll_id, framing_id)


def _still_slipping(session: Session, framing: PollFraming, milestone: Milestone) -> bool:
    """Open, in the plan, and its alert still raised: a slip settled meanwhile opens no poll."""
    if milestone.archived or milestone.status != MilestoneStatus.OPEN:
        return False
    initiative = plan.initiative_by_id(session=session, initiative_id=milestone.initiative_id)
    if initiative is None or initiative.archived:
        return False
    alert_id = framing.slip_key.removeprefix("alert:")
    alert = session.get(Alert, int(alert_id)) if alert_id.isdigit() else None
    return alert is not None and alert.state == AlertState.OPEN
