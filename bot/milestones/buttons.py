"""The milestone buttons in Slack: their actions block, the New date and Descope modals, the replies.

Everything here is the Slack side of bot/milestones/rules.py: it reads what was pressed or
typed, calls the rules (which do all checking and writing), and words the outcome with the
templates. A modal keeps the milestone's id, the due date it showed and the button's
response_url in its private_metadata, so the submission can answer where the button was pressed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlmodel import Session

from bot.errors import UserError
from bot.milestones.rules import (
    SCOPE_CUT_MAX,
    MilestoneProblem,
    check_can_act,
    check_open,
    descope,
    move_due,
)
from bot.problems import problem
from bot.row_ids import is_row_id, row_id_in
from bot.services import Services
from bot.slack.errors import SlackError
from storage import plan
from storage.models import Milestone
from templates import render_json_object, render_mrkdwn
from templates.ids import MilestoneIds as Ids

log = logging.getLogger(__name__)

Change = Literal["done", "moved", "descoped"]


def actions_block(milestone_id: int, *, title: str | None = None) -> dict[str, Any]:
    """The Mark done / New date / Descope buttons of one milestone, for a message or Home."""
    return render_json_object(
        "blocks/milestone_actions.json.j2",
        milestone_ids=Ids,
        milestone_id=milestone_id,
        milestone_title=title,
    )


def milestone_id_from(value: str | None) -> int:
    """A button's value; anything but a milestone id is a stale or forged button."""
    milestone_id = row_id_in(value)
    if milestone_id is None:
        raise UserError(problem(MilestoneProblem.NOT_FOUND))
    return milestone_id


# --- what a modal remembers -------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """What a modal's private_metadata carries back on submission."""

    milestone_id: int
    seen_due: date | None  # the due date the modal showed
    response_url: str | None  # of the button that opened it; None from App Home


def form_metadata(milestone: Milestone, response_url: str | None) -> str:
    assert milestone.id is not None
    return json.dumps(
        {"milestone_id": milestone.id, "due": milestone.due.isoformat(), "url": response_url}
    )


def form_from(private_metadata: str | None, *, block_id: str) -> Form:
    """The modal's context; anything unreadable is a stale or forged view (shown at `block_id`)."""
    try:
        data = json.loads(private_metadata or "")
        milestone_id, due, url = data["milestone_id"], data.get("due"), data.get("url")
        seen_due = date.fromisoformat(due) if due is not None else None
    except (ValueError, TypeError, KeyError, AttributeError):
        milestone_id, seen_due, url = None, None, None
    if not is_row_id(milestone_id):
        raise UserError(problem(MilestoneProblem.FORM_OUT_OF_DATE, block_id))
    return Form(milestone_id, seen_due, url if isinstance(url, str) and url else None)


# --- opening a modal --------------------------------------------------------------------------


def new_date_view(
    session: Session, *, milestone_id: int, person: str, response_url: str | None
) -> dict[str, Any]:
    """The New date form, pre-filled with the due date; a UserError if `person` may not move it."""
    milestone = _openable(session, milestone_id=milestone_id, person=person)
    return render_json_object(
        "blocks/milestone_new_date.json.j2", ids=Ids, **_shown(session, milestone, response_url)
    )


def descope_view(
    session: Session, *, milestone_id: int, person: str, response_url: str | None
) -> dict[str, Any]:
    """The Descope form; a UserError if `person` may not descope the milestone."""
    milestone = _openable(session, milestone_id=milestone_id, person=person)
    return render_json_object(
        "blocks/milestone_descope.json.j2",
        ids=Ids,
        scope_cut_max=SCOPE_CUT_MAX,
        **_shown(session, milestone, response_url),
    )


def _openable(session: Session, *, milestone_id: int, person: str) -> Milestone:
    milestone = check_can_act(session, milestone_id=milestone_id, person=person)
    check_open(milestone)
    return milestone


def _shown(session: Session, milestone: Milestone, response_url: str | None) -> dict[str, Any]:
    initiative = plan.initiative_by_id(session=session, initiative_id=milestone.initiative_id)
    return {
        "metadata": form_metadata(milestone, response_url),
        "title": milestone.title,
        "initiative": initiative.title if initiative is not None else "",
        "due": milestone.due,
        "original_due": milestone.original_due,
    }


# --- submitting a modal -----------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """A modal's submission applied: whom to tell, where, and what."""

    response_url: str | None
    reply: str


def submit_new_date(
    session: Session,
    *,
    private_metadata: str | None,
    values: Mapping[str, Mapping[str, Any]],
    person: str,
    now: datetime,
) -> Submitted:
    """Read and apply the New date form; a UserError names what is wrong, at its block."""
    form = form_from(private_metadata, block_id=Ids.NEW_DATE_BLOCK)
    with _shown_at(Ids.NEW_DATE_BLOCK):
        new_due = read_new_date(values)
        changed = move_due(
            session,
            milestone_id=form.milestone_id,
            person=person,
            new_due=new_due,
            now=now,
            seen_due=form.seen_due,
        )
    return Submitted(form.response_url, reply(session, form.milestone_id, "moved", changed))


def submit_descope(
    session: Session,
    *,
    private_metadata: str | None,
    values: Mapping[str, Mapping[str, Any]],
    person: str,
    now: datetime,
) -> Submitted:
    """Read and apply the Descope form; a UserError names what is wrong, at its block."""
    form = form_from(private_metadata, block_id=Ids.SCOPE_CUT_BLOCK)
    typed = _element(values, Ids.SCOPE_CUT_BLOCK, Ids.SCOPE_CUT_INPUT).get("value")
    with _shown_at(Ids.SCOPE_CUT_BLOCK):
        changed = descope(
            session,
            milestone_id=form.milestone_id,
            person=person,
            scope_cut=typed if isinstance(typed, str) else "",
            now=now,
        )
    return Submitted(form.response_url, reply(session, form.milestone_id, "descoped", changed))


def read_new_date(values: Mapping[str, Mapping[str, Any]]) -> date:
    """The picked date; the picker sends only ISO dates, so anything else was forged."""
    chosen = _element(values, Ids.NEW_DATE_BLOCK, Ids.NEW_DATE_INPUT).get("selected_date")
    if not chosen:
        raise UserError(problem(MilestoneProblem.NEW_DATE_MISSING, Ids.NEW_DATE_BLOCK))
    try:
        return date.fromisoformat(str(chosen))
    except ValueError:
        raise UserError(problem(MilestoneProblem.NEW_DATE_UNREADABLE, Ids.NEW_DATE_BLOCK)) from None


@contextmanager
def _shown_at(block_id: str) -> Iterator[None]:
    """Problems about the whole form (not allowed, already done) are shown on its one field."""
    try:
        yield
    except UserError as refused:
        if not refused.problems:
            raise
        located = (p if p.field else p.at(block_id) for p in refused.problems)
        raise type(refused)(*located) from None


def _element(values: Mapping[str, Mapping[str, Any]], block_id: str, action_id: str) -> Any:
    block = values.get(block_id)
    element = block.get(action_id) if isinstance(block, Mapping) else None
    return element if isinstance(element, dict) else {}


# --- telling the person who pressed -----------------------------------------------------------


def reply(session: Session, milestone_id: int, change: Change, changed: bool) -> str:
    """What the person is told, from the milestone as it now stands."""
    found = plan.milestone_and_people(session=session, milestone_id=milestone_id)
    assert found is not None  # the rule just read it, in this transaction
    milestone = found.milestone
    return render_mrkdwn(
        "blocks/milestone_reply.txt.j2",
        change=change,
        changed=changed,
        title=milestone.title,
        initiative=found.initiative.title,
        due=milestone.due,
        original_due=milestone.original_due,
        scope_note=milestone.scope_note,
    )


def tell_presser(services: Services, *, user: str, response_url: str | None, text: str) -> None:
    """Ephemeral where the button was pressed (works outside channels the person is in), else a DM.

    A response_url lasts 30 minutes: a modal left open longer falls back to the DM.
    """
    if response_url:
        try:
            services.slack.respond(response_url, text=text)
            return
        except SlackError as exc:
            log.info("response_url refused (%s); telling %s by DM", exc.code, user)
    services.slack.post_message(channel=user, text=text)
