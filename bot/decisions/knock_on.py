"""After a decision: the knock-on answers, the owner's shift of later milestones, the action reminders.

Each button is checked on the server: a knock-on is answered only by the person asked, the
shift only by the initiative's owner or an admin. Each answer counts once (a conditional
UPDATE), and a "this moves us too" date goes through the milestone or dependency rules, in
the same transaction as the answer, so a refused date leaves nothing written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.decisions import outcomes
from bot.dependencies.changes import change_state, check_provider
from bot.dependencies.rules import DependencyAction, check_alternative_date, check_reason
from bot.errors import NotAllowed, NotFound, UserError
from bot.milestones.rules import actor_for, apply_move_due, move_due, plan_today
from bot.problems import ProblemCode, problem
from bot.row_ids import is_row_id, row_id_in
from bot.services import Services
from bot.slack.errors import SlackError, SlackUnavailable
from storage import outcomes as queries
from storage import plan
from storage.db import session_scope
from storage.models import (
    DecisionAction,
    DecisionPoll,
    Dependency,
    Initiative,
    KnockOnAnswer,
    Milestone,
)
from storage.people import person_by_id, person_by_slack_id
from templates import render_json_object, render_mrkdwn
from templates.ids import FollowThroughIds as Ids

log = logging.getLogger(__name__)

NOTE_MAX = 1000
REMINDERS_PER_TICK = 200


class FollowThroughProblem(ProblemCode):
    """What can be wrong with a knock-on answer or the shift of later milestones."""

    NOT_FOUND = "follow_through.not_found"
    NOT_ASKED = "follow_through.not_asked"
    ALREADY_ANSWERED = "follow_through.already_answered"
    SHIFT_NOT_ALLOWED = "follow_through.shift_not_allowed"  # initiative
    DATE_MISSING = "follow_through.date_missing"
    DATE_UNREADABLE = "follow_through.date_unreadable"
    NOTE_TOO_LONG = "follow_through.note_too_long"  # max
    FORM_OUT_OF_DATE = "follow_through.form_out_of_date"


def row_id_from(value: str | None) -> int:
    """A button's value or a form's metadata: anything but a row id is stale or forged."""
    row_id = row_id_in(value)
    if row_id is None:
        raise NotFound(problem(FollowThroughProblem.NOT_FOUND))
    return row_id


# --- knock-on answers -------------------------------------------------------------------------------


def check_asked(session: Session, *, knock_on_id: int, user: str) -> queries.KnockOnView:
    """The knock-on, if `user` is the person it asks and has not answered yet."""
    view = queries.knock_on_by_id(session=session, knock_on_id=knock_on_id)
    if view is None:
        raise NotFound(problem(FollowThroughProblem.NOT_FOUND))
    if view.person.slack_id != user:
        raise NotAllowed(problem(FollowThroughProblem.NOT_ASKED))
    if view.knock_on.answer is not None:
        raise UserError(problem(FollowThroughProblem.ALREADY_ANSWERED))
    return view


def still_on_track(services: Services, *, knock_on_id: int, user: str, now: datetime) -> bool:
    """`user` confirms they can still make their dates; False for a repeat."""
    with session_scope(services.engine) as session:
        view = queries.knock_on_by_id(session=session, knock_on_id=knock_on_id)
        if view is not None and view.person.slack_id == user and view.knock_on.answer:
            return False  # a double click: the first one counted
        check_asked(session, knock_on_id=knock_on_id, user=user)
        changed = queries.answer_knock_on(
            session=session, knock_on_id=knock_on_id, answer=KnockOnAnswer.ON_TRACK, now=now
        )
    if changed:
        after_answer(services, knock_on_id, now)
    return changed


def moves_us_view(session: Session, *, knock_on_id: int, user: str) -> dict[str, Any]:
    """The "This moves us too" modal, for the person asked only."""
    view = check_asked(session, knock_on_id=knock_on_id, user=user)
    line = _line(session, view.knock_on.decision_id, knock_on_id)
    return render_json_object(
        "blocks/decisions/knock_on_moves_us.json.j2",
        ids=Ids,
        metadata=json.dumps({"knock_on_id": knock_on_id}),
        line=line,
        note_max=NOTE_MAX,
    )


def _line(session: Session, decision_id: int, knock_on_id: int) -> dict[str, Any]:
    return next(
        line for line in outcomes.knock_on_lines(session, decision_id) if line["id"] == knock_on_id
    )


def knock_on_id_in(private_metadata: str | None) -> int:
    try:
        value = json.loads(private_metadata or "").get("knock_on_id")
    except (ValueError, AttributeError):
        value = None
    if not is_row_id(value):
        raise UserError(problem(FollowThroughProblem.FORM_OUT_OF_DATE, Ids.MOVES_US_DATE_BLOCK))
    return value


@dataclass(frozen=True)
class MovesUsForm:
    new_date: date
    note: str | None


def read_moves_us(values: Mapping[str, Mapping[str, Any]]) -> MovesUsForm:
    """The date and the note as typed, every problem at its block (all reported at once)."""
    problems = []
    chosen = _element(values, Ids.MOVES_US_DATE_BLOCK, Ids.MOVES_US_DATE).get("selected_date")
    new_date: date | None = None
    if not chosen:
        problems.append(problem(FollowThroughProblem.DATE_MISSING, Ids.MOVES_US_DATE_BLOCK))
    else:
        try:
            new_date = date.fromisoformat(str(chosen))
        except ValueError:
            problems.append(problem(FollowThroughProblem.DATE_UNREADABLE, Ids.MOVES_US_DATE_BLOCK))
    typed = _element(values, Ids.MOVES_US_NOTE_BLOCK, Ids.MOVES_US_NOTE).get("value")
    note = typed.strip() if isinstance(typed, str) and typed.strip() else None
    if note is not None and len(note) > NOTE_MAX:
        problems.append(
            problem(FollowThroughProblem.NOTE_TOO_LONG, Ids.MOVES_US_NOTE_BLOCK, max=NOTE_MAX)
        )
    if problems:
        raise UserError(*problems)
    assert new_date is not None
    return MovesUsForm(new_date, note)


def submit_moves_us(
    session: Session,
    *,
    private_metadata: str | None,
    values: Mapping[str, Mapping[str, Any]],
    user: str,
    now: datetime,
) -> int:
    """Record "this moves us too" and the new date, through the plan's rules; the knock-on id.

    A milestone's new due date goes through `move_due` (its owner, lead or an admin); a
    dependency's date is the provider's "can't make it" (the note is its reason). A UserError
    names the field; the caller's transaction then rolls back, so nothing is written.
    """
    knock_on_id = knock_on_id_in(private_metadata)
    try:
        view = check_asked(session, knock_on_id=knock_on_id, user=user)
    except UserError as refused:
        located = (p if p.field else p.at(Ids.MOVES_US_DATE_BLOCK) for p in refused.problems)
        raise type(refused)(*located) from None
    form = read_moves_us(values)
    kind, subject_id = outcomes.knock_on_subject(view.knock_on)
    try:
        if kind == "dependency":
            _provider_moves(session, subject_id, user=user, form=form, now=now)
        else:
            move_due(session, milestone_id=subject_id, person=user, new_due=form.new_date, now=now)
    except UserError as refused:  # a date the rules refuse: shown on the date field
        located = (p if p.field else p.at(Ids.MOVES_US_DATE_BLOCK) for p in refused.problems)
        raise type(refused)(*located) from None
    queries.answer_knock_on(
        session=session,
        knock_on_id=knock_on_id,
        answer=KnockOnAnswer.MOVES_US,
        now=now,
        answer_date=form.new_date,
        note=form.note,
    )
    return knock_on_id


def _provider_moves(
    session: Session, dependency_id: int, *, user: str, form: MovesUsForm, now: datetime
) -> None:
    reason, problems = check_reason(form.note, Ids.MOVES_US_NOTE_BLOCK)
    _, date_problems = check_alternative_date(
        form.new_date.isoformat(), today=plan_today(session, now), field=Ids.MOVES_US_DATE_BLOCK
    )
    problems += date_problems
    if problems:
        raise UserError(*problems)
    dependency, person = check_provider(session, dependency_id=dependency_id, user=user)
    change_state(
        session,
        dependency=dependency,
        action=DependencyAction.CANT_MAKE_IT,
        actor=actor_for(user),
        by_person_id=person.id,
        now=now,
        reason=reason,
        alternative_date=form.new_date,
        field=Ids.MOVES_US_DATE_BLOCK,
    )


def after_answer(services: Services, knock_on_id: int, now: datetime) -> None:
    """The DM loses its buttons and the thread line shows the answer."""
    with session_scope(services.engine) as session:
        view = queries.knock_on_by_id(session=session, knock_on_id=knock_on_id)
        if view is None:
            return
        decision = queries.decision_by_id(session=session, decision_id=view.knock_on.decision_id)
        milestone = session.get(Milestone, decision.milestone_id) if decision else None
        line = _line(session, view.knock_on.decision_id, knock_on_id)
        channel, ts = view.knock_on.channel_id, view.knock_on.message_ts
    if decision is None or milestone is None:
        return
    if channel and ts:
        message = outcomes.knock_on_dm(decision, milestone, line)
        try:
            services.slack.update_message(
                channel=channel, ts=ts, text=str(message["text"]), blocks=list(message["blocks"])
            )
        except SlackError as exc:
            log.warning("Knock-on DM %s not redrawn: %s", knock_on_id, exc.code)
    outcomes.post_knock_on_line(services, view.knock_on.decision_id, now, redraw=True)


def reply(what: str, *, count: int = 0, days: int = 0) -> str:
    return render_mrkdwn(
        "blocks/decisions/follow_through_reply.txt.j2", what=what, count=count, days=days
    )


# --- shifting the initiative's later milestones -----------------------------------------------------


def shift_later(
    services: Services, *, decision_id: int, user: str, now: datetime
) -> tuple[int, int] | None:
    """The owner (or an admin) shifts the later milestones by the delay's days, once.

    (milestones shifted, days); None when they were already shifted (a double click). Each milestone
    moves through the milestone rules, what feeds it moves as the delay's own feeders did,
    and whoever else owns a moved date is asked about the knock-on.
    """
    with session_scope(services.engine) as session:
        decision = queries.decision_by_id(session=session, decision_id=decision_id)
        if decision is None:
            raise NotFound(problem(FollowThroughProblem.NOT_FOUND))
        found = plan.milestone_and_people(
            session=session, milestone_id=decision.milestone_id, asker_slack_id=user
        )
        if found is None:
            raise NotFound(problem(FollowThroughProblem.NOT_FOUND))
        if user != found.owner_slack_id and not found.asker_is_admin:
            raise NotAllowed(
                problem(FollowThroughProblem.SHIFT_NOT_ALLOWED, initiative=found.initiative.title)
            )
        if not queries.claim_shift(session=session, decision_id=decision_id, now=now):
            return None
        days = decision.days_moved or 0
        before = (decision.new_due or found.milestone.due) - timedelta(days=days)
        later = queries.later_open_milestones(
            session=session,
            initiative_id=found.initiative.id or 0,
            after=before,
            other_than=found.milestone.id or 0,
        )
        shifted, feeders = _shift(session, decision, found.initiative, later, user, days, now)
    outcomes.tell_providers(services, feeders, now)
    outcomes.post_knock_on_line(services, decision_id, now, redraw=True)
    outcomes.ask_knock_ons(services, decision_id, now)
    return shifted, days


def _shift(
    session: Session,
    decision: Any,
    initiative: Initiative,
    later: list[Milestone],
    user: str,
    days: int,
    now: datetime,
) -> tuple[int, list[int]]:
    actor = actor_for(user)
    presser = person_by_slack_id(session=session, slack_id=user)
    owner_id = initiative.owner_id
    shifted, feeders = 0, list[int]()
    milestone_moves: list[tuple[Milestone, int, date]] = []
    dependency_moves: list[tuple[Dependency, date]] = []
    for milestone in later:
        assert milestone.id is not None
        new_due = milestone.due + timedelta(days=days)
        try:
            moved = apply_move_due(
                session, milestone_id=milestone.id, actor=actor, new_due=new_due, now=now
            )
        except UserError as refused:  # e.g. still in the past after the shift: left as it is
            log.info("Not shifting %s: %s", milestone.key, refused.problems)
            continue
        if not moved:
            continue
        shifted += 1
        if presser is None or presser.id != owner_id:
            milestone_moves.append((milestone, owner_id, new_due))
        moves = outcomes.move_feeding_dependencies(
            session, milestone_id=milestone.id, days=days, cap=new_due, actor=actor, now=now
        )
        dependency_moves.extend(moves)
        feeders.extend(d.id for d, _ in moves if d.id is not None)
    outcomes.add_knock_ons(
        session,
        decision,
        dependency_moves=dependency_moves,
        milestone_moves=milestone_moves,
        now=now,
    )
    return shifted, feeders


# --- the tick: retries, and the action reminders ---------------------------------------------------


@dataclass
class FollowUpReport:
    followed_up: int = 0
    reminded: int = 0


def decision_follow_up(services: Services, now: datetime) -> FollowUpReport:
    """The tick's step: finish every follow-through not yet sent, remind actions due today.

    A quiet tick reads two indexed queries and calls Slack for nothing.
    """
    report = FollowUpReport()
    with session_scope(services.engine) as session:
        pending = queries.decisions_to_follow_up(
            session=session, stale=now - outcomes.CLAIM_LEASE, limit=outcomes.FOLLOW_UPS_PER_TICK
        )
        due = queries.due_actions(
            session=session, today=plan_today(session, now), limit=REMINDERS_PER_TICK
        )
    for decision_id in pending:
        outcomes.follow_through(services, decision_id, now)
        report.followed_up += 1
    for action_id in due:
        if _remind(services, action_id, now):
            report.reminded += 1
    return report


def _remind(services: Services, action_id: int, now: datetime) -> bool:
    with session_scope(services.engine) as session:
        if not queries.claim_reminder(session=session, action_id=action_id, now=now):
            return False
        context = _reminder_context(session, action_id)
    if context is None:
        return False
    owner, poll_message, values = context
    if poll_message is not None:
        try:
            values["link"] = services.slack.permalink(channel=poll_message[0], ts=poll_message[1])
        except SlackError:
            values["link"] = None
    message = render_json_object("blocks/decisions/action_reminder.json.j2", **values)
    try:
        services.slack.post_message(
            channel=owner, text=str(message["text"]), blocks=list(message["blocks"])
        )
    except SlackUnavailable as exc:
        log.warning("Reminder of action %s not sent (%s): retried", action_id, exc.code)
        with session_scope(services.engine) as session:
            queries.release_reminder(session=session, action_id=action_id)
        return False
    except SlackError as exc:
        log.warning("Reminder of action %s refused by Slack: %s", action_id, exc.code)
        return False
    return True


def _reminder_context(
    session: Session, action_id: int
) -> tuple[str, tuple[str, str] | None, dict[str, Any]] | None:
    action = session.get(DecisionAction, action_id)
    decision = (
        queries.decision_by_id(session=session, decision_id=action.decision_id) if action else None
    )
    if action is None or decision is None:
        return None
    owner = person_by_id(session=session, person_id=action.owner_id)
    milestone = session.get(Milestone, decision.milestone_id)
    initiative = session.get(Initiative, milestone.initiative_id) if milestone else None
    if owner is None or not owner.slack_id or milestone is None or initiative is None:
        log.info("Action %s has nobody to remind", action_id)
        return None
    poll = session.get(DecisionPoll, decision.poll_id) if decision.poll_id else None
    where = (
        (poll.channel_id, poll.message_ts) if poll and poll.channel_id and poll.message_ts else None
    )
    return (
        owner.slack_id,
        where,
        {
            "what": action.what,
            "due": action.due,
            "milestone": milestone.title,
            "initiative": initiative.title,
            "link": None,
        },
    )


def _element(values: Mapping[str, Mapping[str, Any]], block_id: str, action_id: str) -> Any:
    block = values.get(block_id)
    element = block.get(action_id) if isinstance(block, Mapping) else None
    return element if isinstance(element, dict) else {}
