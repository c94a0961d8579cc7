"""Opening a decision poll: who may, what is known of a slip, one open poll per milestone, its parent message posted once.

The database decides: a poll is an insert that skips on the milestone's open key, so two
processes (a tick and a modal submission, two replicas) opening at once make one poll; a slip
joining an open poll is a conditional update, so its thread line is posted once; the parent
message is posted under a claim, found again in the channel's history after a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.decisions.poll_message import draw_poll
from bot.decisions.thread import post_in_thread
from bot.errors import NotAllowed, NotFound, UserError
from bot.health import plan_today
from bot.problems import ProblemCode, problem
from bot.services import Services
from bot.slack.errors import SlackError
from bot.slack.gateway import MessageTag
from storage import decisions as queries
from storage import plan
from storage.channels import clear_channel_problem, record_channel_problem
from storage.db import session_scope
from storage.detection import resolved_channel
from storage.models import (
    DecisionPoll,
    Milestone,
    MilestoneStatus,
    PollFraming,
    PollState,
    SlipCause,
)
from storage.people import person_by_slack_id
from templates.ids import FramingIds, MessageEvents

log = logging.getLogger(__name__)

# A claim older than this was left by a process that died between claiming and posting.
CLAIM_LEASE = timedelta(minutes=10)

# Slack's answers that mean "the bot cannot post to this channel", not "try again".
CHANNEL_PROBLEMS = {
    "not_in_channel": "not_member",
    "channel_not_found": "not_found",
    "is_archived": "archived",
}

# What the owner may write for the scope cut and the resources: a paragraph each.
FRAMING_TEXT_MAX = 2000


class DecisionProblem(ProblemCode):
    """What can be wrong with opening a decision poll (/decide, the buttons, the framing modal)."""

    USAGE = "decision.usage"  # command
    UNKNOWN_KEY = "decision.unknown_key"  # key, suggestions
    NOT_FOUND = "decision.not_found"
    ARCHIVED = "decision.archived"  # milestone
    NOT_ALLOWED = "decision.not_allowed"  # milestone, initiative
    MILESTONE_DONE = "decision.milestone_done"  # milestone
    MILESTONE_DESCOPED = "decision.milestone_descoped"  # milestone
    FORM_OUT_OF_DATE = "decision.form_out_of_date"
    DATE_MISSING = "decision.date_missing"
    DATE_UNREADABLE = "decision.date_unreadable"
    DATE_NOT_AFTER_DUE = "decision.date_not_after_due"  # due (ISO)
    DATE_IN_PAST = "decision.date_in_past"  # today (ISO, plan timezone)
    TEXT_TOO_LONG = "decision.text_too_long"  # max, length


# --- who may open a poll ----------------------------------------------------------------------


@dataclass(frozen=True)
class Asker:
    """A milestone someone may open a poll on, and who they are (None: not in the plan)."""

    milestone: Milestone
    initiative_title: str
    person_id: int | None


def check_may_open(session: Session, *, milestone_id: int, person: str) -> Asker:
    """The milestone, if `person` (a Slack user ID) may open a poll on it: the initiative's
    owner, a leader or an admin. NotFound when it is not in the plan, NotAllowed for anyone
    else, a UserError when it is done or descoped. Two primary-key reads: fine before a modal.
    """
    found = plan.milestone_and_people(
        session=session, milestone_id=milestone_id, asker_slack_id=person
    )
    if found is None:
        raise NotFound(problem(DecisionProblem.NOT_FOUND))
    milestone = found.milestone
    if milestone.archived or found.initiative.archived:
        raise NotFound(problem(DecisionProblem.ARCHIVED, milestone=milestone.title))
    asker = person_by_slack_id(session=session, slack_id=person)
    leader = asker is not None and asker.is_leader and asker.active
    if person != found.owner_slack_id and not leader and not found.asker_is_admin:
        raise NotAllowed(
            problem(
                DecisionProblem.NOT_ALLOWED,
                milestone=milestone.title,
                initiative=found.initiative.title,
            )
        )
    check_still_open(milestone)
    return Asker(milestone, found.initiative.title, asker.id if asker is not None else None)


def check_still_open(milestone: Milestone) -> None:
    if milestone.status == MilestoneStatus.DONE:
        raise UserError(problem(DecisionProblem.MILESTONE_DONE, milestone=milestone.title))
    if milestone.status != MilestoneStatus.OPEN:
        raise UserError(problem(DecisionProblem.MILESTONE_DESCOPED, milestone=milestone.title))


# --- what is known of a slip ------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A slip as far as the plan tells: its cause, and the delay it implies."""

    cause: SlipCause
    dependency_id: int | None
    proposed_due: date  # the date a delay would need
    slip_days: int


def slip_so_far(due: date, today: date) -> int:
    """Days from the due date to today (plan timezone), at least one: a slip is never zero days."""
    return max(1, (today - due).days)


def known_slip(
    session: Session,
    milestone: Milestone,
    today: date,
    *,
    cause: str | None = None,
    dependency_id: int | None = None,
) -> Known:
    """The delay a slip implies. Missed: the slip observed so far. Held up by a blocked
    dependency: the milestone moves by as many days as the dependency's alternative date is
    late, when one is known, else by the slip so far. Without a slip on record (a poll asked
    for by hand), its cause is read from the plan now.
    """
    if cause is None:
        blocked = (
            queries.blocked_feeding(
                session=session, milestone_id=int(milestone.id or 0), today=today
            )
            if milestone.due >= today
            else None
        )
        cause = SlipCause.BLOCKED if blocked is not None else SlipCause.MISSED
        dependency_id = blocked.id if blocked is not None else None
    days = slip_so_far(milestone.due, today)
    if cause == SlipCause.BLOCKED:
        found = queries.dependency_with_team(session=session, dependency_id=dependency_id)
        dependency = found[0] if found is not None else None
        if dependency is not None and dependency.alternative_date is not None:
            days = max(1, (dependency.alternative_date - dependency.needed_by).days)
    return Known(
        cause=SlipCause(cause),
        dependency_id=dependency_id if cause == SlipCause.BLOCKED else None,
        proposed_due=milestone.due + timedelta(days=days),
        slip_days=days,
    )


def check_framing(
    milestone: Milestone,
    *,
    proposed_due: date | None,
    scope_cut: str | None,
    resources: str | None,
    today: date,
) -> None:
    """The framing modal's rule: a delay needs a date after the current due date, not in the past."""
    problems = []
    if proposed_due is None:
        problems.append(problem(DecisionProblem.DATE_MISSING, FramingIds.DATE_BLOCK))
    elif proposed_due <= milestone.due:
        problems.append(
            problem(
                DecisionProblem.DATE_NOT_AFTER_DUE,
                FramingIds.DATE_BLOCK,
                due=milestone.due.isoformat(),
            )
        )
    elif proposed_due < today:
        problems.append(
            problem(DecisionProblem.DATE_IN_PAST, FramingIds.DATE_BLOCK, today=today.isoformat())
        )
    for block, text in (
        (FramingIds.SCOPE_BLOCK, scope_cut),
        (FramingIds.RESOURCES_BLOCK, resources),
    ):
        if text is not None and len(text) > FRAMING_TEXT_MAX:
            problems.append(
                problem(
                    DecisionProblem.TEXT_TOO_LONG, block, max=FRAMING_TEXT_MAX, length=len(text)
                )
            )
    if problems:
        raise UserError(*problems)


# --- opening ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """What opening did: a new poll to post, or a slip that joined an open poll (a thread line)."""

    poll_id: int
    created: bool
    joined: bool = False  # the slip joined the poll that was already open: tell its thread


def poll_facts(session: Session, milestone: Milestone, known: Known) -> dict[str, Any]:
    """What the parent message states, frozen at opening (see templates/blocks/decisions/poll.json.j2)."""
    initiative = plan.initiative_by_id(session=session, initiative_id=milestone.initiative_id)
    assert initiative is not None  # a milestone always belongs to an initiative
    owner = plan.milestone_and_people(session=session, milestone_id=int(milestone.id or 0))
    dependency = queries.dependency_with_team(session=session, dependency_id=known.dependency_id)
    return {
        "milestone_id": milestone.id,
        "milestone_key": milestone.key,
        "milestone_title": milestone.title,
        "initiative_key": initiative.key,
        "initiative_title": initiative.title,
        "owner": owner.owner_slack_id if owner is not None else None,
        "original_due": milestone.original_due.isoformat(),
        "due": milestone.due.isoformat(),
        "slip_days": known.slip_days,
        "cause": known.cause.value,
        "dependency": (
            {"need": dependency[0].need, "team": dependency[1]} if dependency is not None else None
        ),
        "later_milestones": [
            {"key": m.key, "title": m.title, "due": m.due.isoformat()}
            for m in queries.later_milestones(session=session, milestone=milestone)
        ],
        "waiting_dependencies": [
            {"key": d.key, "need": d.need, "team": team, "needed_by": d.needed_by.isoformat()}
            for d, team in queries.waiting_dependencies(
                session=session, initiative=initiative, milestone=milestone
            )
        ],
        "kpis": [
            {"key": k.key, "name": k.name}
            for k in queries.initiative_kpis(session=session, initiative_id=initiative.id or 0)
        ],
    }


def open_poll(
    session: Session,
    *,
    milestone: Milestone,
    framing: PollFraming | None,
    now: datetime,
    opened_by_id: int | None = None,
    anonymous: bool | None = None,
    proposed_due: date | None = None,
    scope_cut: str | None = None,
    resources: str | None = None,
) -> Opened:
    """Open the milestone's poll, or join `framing` to the one already open.

    Values not given come from the framing (what its owner framed), else from what is known.
    """
    settings = plan.plan_settings(session=session)
    today = plan_today(now, settings.timezone)
    assert milestone.id is not None
    known = known_slip(
        session,
        milestone,
        today,
        cause=framing.cause if framing is not None else None,
        dependency_id=framing.dependency_id if framing is not None else None,
    )
    if framing is not None:
        proposed_due = proposed_due or framing.proposed_due
        scope_cut = scope_cut if scope_cut is not None else framing.scope_cut
        resources = resources if resources is not None else framing.resources
    deadline = now + timedelta(hours=settings.poll_hours)
    poll_id = queries.insert_poll(
        session=session,
        values={
            "milestone_id": milestone.id,
            "open_key": queries.poll_open_key(milestone.id),
            "state": PollState.OPEN,
            "opened_at": now,
            "slipped_at": framing.slipped_at if framing is not None else None,
            "original_deadline": deadline,
            "deadline": deadline,
            "opened_by_id": opened_by_id,
            "anonymous": settings.poll_anonymous if anonymous is None else anonymous,
            "proposed_due": proposed_due or known.proposed_due,
            "scope_cut": scope_cut or None,
            "resources": resources or None,
            "facts": poll_facts(session, milestone, known),
        },
    )
    created = poll_id is not None
    if poll_id is None:
        existing = queries.open_poll_of(session=session, milestone_id=milestone.id)
        if existing is None or existing.id is None:
            # Closed between our insert and this read: the next tick opens the slip's own poll.
            raise UserError(problem(DecisionProblem.FORM_OUT_OF_DATE))
        poll_id = existing.id
    joined = False
    if framing is not None and framing.id is not None:
        attached = queries.attach_framing(session=session, framing_id=framing.id, poll_id=poll_id)
        joined = attached and not created
    return Opened(poll_id=poll_id, created=created, joined=joined)


# --- posting ----------------------------------------------------------------------------------


def decision_channel(session: Session) -> str | None:
    """Where polls go: the plan's decision channel as the directory resolved it (alerts' if none)."""
    settings = plan.plan_settings(session=session)
    ref = settings.decisions_channel or settings.alerts_channel
    return resolved_channel(session=session, ref=ref)


@dataclass
class PostReport:
    posted: int = 0
    recovered: int = 0  # found in the channel after a crash, recorded without posting again
    unposted: int = 0  # kept for the next tick: nowhere to post, or the channel refused
    thread_lines: int = 0


def post_unposted_polls(
    services: Services, now: datetime, report: PostReport | None = None
) -> PostReport:
    """Post every open poll whose parent message is not in Slack yet (the tick retries the rest)."""
    report = report or PostReport()
    with session_scope(services.engine) as session:
        waiting = [p.id for p in queries.unposted_polls(session=session) if p.id is not None]
        channel = decision_channel(session) if waiting else None
    if channel is None:
        report.unposted += len(waiting)  # no channel to post to: nothing to call Slack for
        return report
    for poll_id in waiting:
        post_poll(services, poll_id, channel, now, report)
    return report


def post_poll(
    services: Services, poll_id: int, channel: str, now: datetime, report: PostReport
) -> None:
    """Post one poll's parent message under a claim; a stale claim is looked for in Slack first."""
    with session_scope(services.engine) as session:
        before = session.get(DecisionPoll, poll_id)
        stale = before.claimed_at if before is not None else None
        if not queries.claim_poll_post(
            session=session, poll_id=poll_id, now=now, lease=CLAIM_LEASE
        ):
            return
    if stale is not None and _recovered(services, poll_id, channel, stale, report):
        return
    with session_scope(services.engine) as session:
        drawn = draw_poll(session, poll_id)
    if drawn is None:
        return
    _, message = drawn
    try:
        posted = services.slack.post_message(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            tag=MessageTag(MessageEvents.POLL, {"poll_id": poll_id}),
        )
    except SlackError as exc:
        refused = CHANNEL_PROBLEMS.get(exc.code)
        with session_scope(services.engine) as session:
            queries.release_poll_claim(session=session, poll_id=poll_id)
            if refused is not None:
                record_channel_problem(
                    session=session, channel_id=channel, problem=refused, now=now
                )
        if refused is None:
            raise
        log.warning(
            "Cannot post poll %s to %s (%s); kept for the next tick", poll_id, channel, exc.code
        )
        report.unposted += 1
        return
    with session_scope(services.engine) as session:
        queries.mark_poll_posted(
            session=session,
            poll_id=poll_id,
            channel_id=posted.channel,
            ts=posted.ts,
            shown=message.fingerprint,
        )
        clear_channel_problem(session=session, channel_id=channel, now=now)
    report.posted += 1


def _recovered(
    services: Services, poll_id: int, channel: str, claimed_at: datetime, report: PostReport
) -> bool:
    """A claim taken over from a process that died may have been posted: Slack's history says."""
    tagged = services.slack.find_tagged_messages(
        channel=channel, event_type=MessageEvents.POLL, oldest=claimed_at - CLAIM_LEASE
    )
    for message in tagged:
        if str(message.payload.get("poll_id")) == str(poll_id):
            with session_scope(services.engine) as session:
                # Unknown fingerprint: the next redraw (a vote, a tick) brings it in line.
                queries.mark_poll_posted(
                    session=session, poll_id=poll_id, channel_id=channel, ts=message.ts, shown=None
                )
            report.recovered += 1
            return True
    return False


def tell_thread_of_slip(services: Services, poll_id: int, framing_id: int) -> bool:
    """A second slip while the poll is open: one line in its thread (the caller won the join)."""
    with session_scope(services.engine) as session:
        framing = queries.framing_by_id(session=session, framing_id=framing_id)
        milestone = session.get(Milestone, framing.milestone_id) if framing is not None else None
        if framing is None or milestone is None:
            return False
        today = plan_today(framing.slipped_at, plan.plan_timezone(session=session))
        known = known_slip(
            session, milestone, today, cause=framing.cause, dependency_id=framing.dependency_id
        )
        dependency = queries.dependency_with_team(
            session=session, dependency_id=known.dependency_id
        )
        context: dict[str, Any] = {
            "cause": known.cause.value,
            "slip_days": known.slip_days,
            "due": milestone.due,
            "dependency": (
                {"need": dependency[0].need, "team": dependency[1]} if dependency else None
            ),
        }
    try:
        posted = post_in_thread(services, poll_id, "blocks/decisions/slip_line.json.j2", **context)
    except SlackError as exc:
        # The poll already states the milestone's trouble; the line is news, not the record.
        log.warning("Could not tell poll %s's thread of a new slip: %s", poll_id, exc.code)
        return False
    return posted is not None
