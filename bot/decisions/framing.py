"""The framing modal in Slack: opened by /decide, Open a decision or the owner's DM button; submitted, it opens the poll.

The permission check comes before any modal opens (bot.decisions.opening.check_may_open: two
primary-key reads, well inside the trigger_id's 3 seconds), and again on submission. The modal
keeps the milestone, the slip (framing) it answers, the anonymous word and the button's
response_url in its private_metadata.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot.decisions.opening import (
    FRAMING_TEXT_MAX,
    DecisionProblem,
    Opened,
    PostReport,
    check_framing,
    check_may_open,
    decision_channel,
    known_slip,
    open_poll,
    post_poll,
    tell_thread_of_slip,
)
from bot.errors import NotFound, UserError
from bot.health import plan_today
from bot.problems import problem
from bot.row_ids import is_row_id, row_id_in
from bot.services import Services
from bot.slack.errors import SlackError
from storage import decisions as queries
from storage import plan
from storage.db import session_scope
from storage.models import DecisionPoll, Milestone, PollFraming
from templates import render_json_object
from templates.ids import FramingIds

log = logging.getLogger(__name__)

ANONYMOUS_WORD = "anonymous"
SUGGESTIONS = 3


@dataclass(frozen=True)
class Form:
    """What the framing modal's private_metadata carries back on submission."""

    milestone_id: int
    framing_id: int | None
    anonymous: bool | None  # None: the plan's default
    response_url: str | None


def form_metadata(form: Form) -> str:
    return json.dumps(
        {
            "milestone_id": form.milestone_id,
            "framing_id": form.framing_id,
            "anonymous": form.anonymous,
            "url": form.response_url,
        }
    )


def form_from(private_metadata: str | None) -> Form:
    """The modal's context; anything unreadable is a stale or forged view."""
    try:
        data = json.loads(private_metadata or "")
        milestone_id, framing_id = data["milestone_id"], data.get("framing_id")
        anonymous, url = data.get("anonymous"), data.get("url")
    except (ValueError, TypeError, KeyError, AttributeError):
        milestone_id, framing_id, anonymous, url = None, None, None, None
    if not is_row_id(milestone_id) or (framing_id is not None and not is_row_id(framing_id)):
        raise UserError(problem(DecisionProblem.FORM_OUT_OF_DATE, FramingIds.DATE_BLOCK))
    return Form(
        milestone_id=milestone_id,
        framing_id=framing_id,
        anonymous=anonymous if isinstance(anonymous, bool) else None,
        response_url=url if isinstance(url, str) and url else None,
    )


def id_from(value: str | None) -> int:
    """A button's value; anything but an ID is a stale or forged button."""
    row_id = row_id_in(value)
    if row_id is None:
        raise UserError(problem(DecisionProblem.NOT_FOUND))
    return row_id


# --- what asking gets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """Either the modal to open, or the answer that the milestone's poll is open already."""

    view: dict[str, Any] | None = None
    open_poll_id: int | None = None


def ask_by_command(
    session: Session, *, text: str, person: str, now: datetime, command: str
) -> Asked:
    """`/decide <milestone-key> [anonymous]`: the modal for someone who may, else a UserError."""
    words = text.split()
    anonymous = len(words) == 2 and words[1].lower() == ANONYMOUS_WORD
    if not words or len(words) > 2 or (len(words) == 2 and not anonymous):
        raise UserError(problem(DecisionProblem.USAGE, command=command))
    milestone = queries.milestone_by_key(session=session, key=words[0])
    if milestone is None or milestone.id is None:
        keys = queries.live_milestone_keys(session=session)
        raise NotFound(
            problem(
                DecisionProblem.UNKNOWN_KEY,
                key=words[0],
                suggestions=difflib.get_close_matches(words[0], keys, n=SUGGESTIONS, cutoff=0.6),
            )
        )
    return ask_for_milestone(
        session,
        milestone_id=milestone.id,
        person=person,
        now=now,
        anonymous=True if anonymous else None,
        response_url=None,
    )


def ask_for_milestone(
    session: Session,
    *,
    milestone_id: int,
    person: str,
    now: datetime,
    anonymous: bool | None,
    response_url: str | None,
) -> Asked:
    """/decide and Open a decision: the framing modal, pre-filled, unless a poll is open."""
    asker = check_may_open(session, milestone_id=milestone_id, person=person)
    poll = queries.open_poll_of(session=session, milestone_id=milestone_id)
    if poll is not None:
        return Asked(open_poll_id=poll.id)
    framing = queries.pending_framing(session=session, milestone_id=milestone_id)
    form = Form(milestone_id, framing.id if framing else None, anonymous, response_url)
    return Asked(view=framing_view(session, asker.milestone, framing, form, now))


def ask_for_framing(
    session: Session, *, framing_id: int, person: str, now: datetime, response_url: str | None
) -> Asked:
    """The owner's DM button: the framing modal for that slip, unless its poll is open."""
    framing = queries.framing_by_id(session=session, framing_id=framing_id)
    if framing is None:
        raise NotFound(problem(DecisionProblem.NOT_FOUND))
    asker = check_may_open(session, milestone_id=framing.milestone_id, person=person)
    poll = queries.open_poll_of(session=session, milestone_id=framing.milestone_id)
    if poll is not None or framing.poll_id is not None:
        return Asked(open_poll_id=poll.id if poll is not None else framing.poll_id)
    form = Form(framing.milestone_id, framing.id, None, response_url)
    return Asked(view=framing_view(session, asker.milestone, framing, form, now))


def framing_view(
    session: Session,
    milestone: Milestone,
    framing: PollFraming | None,
    form: Form,
    now: datetime,
) -> dict[str, Any]:
    """The modal, pre-filled with what the owner framed already, else with what is known."""
    settings = plan.plan_settings(session=session)
    today = plan_today(now, settings.timezone)
    known = known_slip(
        session,
        milestone,
        today,
        cause=framing.cause if framing is not None else None,
        dependency_id=framing.dependency_id if framing is not None else None,
    )
    initiative = plan.initiative_by_id(session=session, initiative_id=milestone.initiative_id)
    return render_json_object(
        "blocks/decisions/framing_modal.json.j2",
        ids=FramingIds,
        metadata=form_metadata(form),
        title=milestone.title,
        initiative=initiative.title if initiative is not None else "",
        due=milestone.due,
        original_due=milestone.original_due,
        proposed_due=(framing.proposed_due if framing and framing.proposed_due else None)
        or known.proposed_due,
        scope_cut=framing.scope_cut if framing else None,
        resources=framing.resources if framing else None,
        text_max=FRAMING_TEXT_MAX,
        anonymous=settings.poll_anonymous if form.anonymous is None else form.anonymous,
    )


# --- submitting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    opened: Opened
    framing_id: int | None
    response_url: str | None
    title: str


def submit_framing(
    session: Session,
    *,
    private_metadata: str | None,
    values: Mapping[str, Mapping[str, Any]],
    person: str,
    now: datetime,
) -> Submitted:
    """Read, check and apply the framing modal: the poll opened (or joined); a UserError names
    what is wrong at its block, and nothing is written."""
    form = form_from(private_metadata)
    try:
        asker = check_may_open(session, milestone_id=form.milestone_id, person=person)
    except UserError as refused:
        located = (p if p.field else p.at(FramingIds.DATE_BLOCK) for p in refused.problems)
        raise type(refused)(*located) from None
    milestone = asker.milestone
    proposed_due = _picked_date(values)
    scope_cut = _typed(values, FramingIds.SCOPE_BLOCK, FramingIds.SCOPE)
    resources = _typed(values, FramingIds.RESOURCES_BLOCK, FramingIds.RESOURCES)
    today = plan_today(now, plan.plan_timezone(session=session))
    check_framing(
        milestone, proposed_due=proposed_due, scope_cut=scope_cut, resources=resources, today=today
    )
    assert proposed_due is not None  # check_framing refuses a missing date
    framing = (
        queries.framing_by_id(session=session, framing_id=form.framing_id)
        if form.framing_id is not None
        else queries.pending_framing(session=session, milestone_id=milestone.id or 0)
    )
    if framing is not None and framing.milestone_id != milestone.id:
        raise UserError(problem(DecisionProblem.FORM_OUT_OF_DATE, FramingIds.DATE_BLOCK))
    if framing is not None and framing.id is not None:
        queries.record_framing(
            session=session,
            framing_id=framing.id,
            proposed_due=proposed_due,
            scope_cut=scope_cut,
            resources=resources,
            by_id=asker.person_id,
            now=now,
        )
    opened = open_poll(
        session,
        milestone=milestone,
        framing=framing if framing is not None and framing.poll_id is None else None,
        now=now,
        opened_by_id=asker.person_id,
        anonymous=form.anonymous,
        proposed_due=proposed_due,
        scope_cut=scope_cut or "",
        resources=resources or "",
    )
    return Submitted(
        opened=opened,
        framing_id=framing.id if framing is not None else None,
        response_url=form.response_url,
        title=milestone.title,
    )


def _picked_date(values: Mapping[str, Mapping[str, Any]]) -> date | None:
    chosen = _element(values, FramingIds.DATE_BLOCK, FramingIds.DATE).get("selected_date")
    if not chosen:
        return None
    try:
        return date.fromisoformat(str(chosen))
    except ValueError:
        raise UserError(problem(DecisionProblem.DATE_UNREADABLE, FramingIds.DATE_BLOCK)) from None


def _typed(values: Mapping[str, Mapping[str, Any]], block_id: str, action_id: str) -> str | None:
    typed = _element(values, block_id, action_id).get("value")
    text = typed.strip() if isinstance(typed, str) else ""
    return text or None


def _element(values: Mapping[str, Mapping[str, Any]], block_id: str, action_id: str) -> Any:
    block = values.get(block_id)
    element = block.get(action_id) if isinstance(block, Mapping) else None
    return element if isinstance(element, dict) else {}


# --- after the ack ----------------------------------------------------------------------------


def after_submission(services: Services, submitted: Submitted, *, user: str, now: datetime) -> None:
    """Post the new poll at once (the tick retries if the channel refuses), or tell its thread
    of the slip that joined it; then tell whoever submitted, with a link."""
    opened = submitted.opened
    if opened.created:
        with session_scope(services.engine) as session:
            channel = decision_channel(session)
        if channel is not None:
            post_poll(services, opened.poll_id, channel, now, PostReport())
    elif opened.joined and submitted.framing_id is not None:
        tell_thread_of_slip(services, opened.poll_id, submitted.framing_id)
    reply = render_json_object(
        "blocks/decisions/poll_opened_reply.json.j2",
        title=submitted.title,
        link=poll_link(services, opened.poll_id),
        created=opened.created,
    )
    tell(services, user=user, response_url=submitted.response_url, message=reply)


def open_poll_answer(services: Services, poll_id: int) -> dict[str, Any]:
    """The answer "this milestone's poll is open already", with a link to it."""
    with session_scope(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        if poll is None:
            raise NotFound(problem(DecisionProblem.NOT_FOUND))
        title, deadline = str(poll.facts.get("milestone_title") or ""), poll.deadline
    return render_json_object(
        "blocks/decisions/open_poll_link.json.j2",
        title=title,
        link=poll_link(services, poll_id),
        deadline=deadline,
    )


def poll_link(services: Services, poll_id: int) -> str | None:
    with session_scope(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        where = (poll.channel_id, poll.message_ts) if poll is not None else (None, None)
    if not where[0] or not where[1]:
        return None
    try:
        return services.slack.permalink(channel=str(where[0]), ts=str(where[1]))
    except SlackError as exc:
        log.info("No permalink for poll %s: %s", poll_id, exc.code)
        return None


def tell(
    services: Services, *, user: str, response_url: str | None, message: Mapping[str, Any]
) -> None:
    """Ephemeral where the button was pressed, else (a command's modal, an expired URL) a DM."""
    text, blocks = str(message["text"]), list(message["blocks"])
    if response_url:
        try:
            services.slack.respond(response_url, text=text, blocks=blocks)
            return
        except SlackError as exc:
            log.info("response_url refused (%s); telling %s by DM", exc.code, user)
    services.slack.post_message(channel=user, text=text, blocks=blocks)
