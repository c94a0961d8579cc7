"""The rules of changing a milestone by hand: who may, what may change, and each change once.

Independent of Slack: `person` is a Slack user ID only because that is how people are known to
PlanPulse; the buttons (bot/milestones/forms.py) and, later, a decision poll's outcome call the
same functions. The `apply_*` variants skip the permission check, for callers that decided who
may themselves (a decision the plan's leaders voted on). Each change is one conditional UPDATE
(storage/plan.py), so a double click, a Slack retry or a second replica changes nothing twice;
each change that happens is audited with its values before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot import audit
from bot.errors import NotAllowed, NotFound, UserError
from bot.problems import ProblemCode, problem
from bot.timezones import local_date, plan_zone
from storage import plan
from storage.models import Milestone, MilestoneStatus
from templates.ids import MilestoneIds as Ids

# What is cut is shown in alerts and the decision log beside the milestone: a paragraph, not an
# essay, and well inside a 3000-character section once escaped.
SCOPE_CUT_MAX = 2000


class MilestoneProblem(ProblemCode):
    """What can be wrong with marking a milestone done, moving its date or cutting its scope."""

    NOT_FOUND = "milestone.not_found"
    ARCHIVED = "milestone.archived"  # milestone
    NOT_ALLOWED = "milestone.not_allowed"  # milestone, initiative
    ALREADY_DONE = "milestone.already_done"  # milestone
    ALREADY_DESCOPED = "milestone.already_descoped"  # milestone
    CHANGED_MEANWHILE = "milestone.changed_meanwhile"  # milestone
    FORM_OUT_OF_DATE = "milestone.form_out_of_date"
    NEW_DATE_MISSING = "milestone.new_date_missing"
    NEW_DATE_UNREADABLE = "milestone.new_date_unreadable"
    NEW_DATE_SAME = "milestone.new_date_same"  # milestone, due (ISO)
    NEW_DATE_IN_PAST = "milestone.new_date_in_past"  # today (ISO, plan timezone)
    SCOPE_CUT_EMPTY = "milestone.scope_cut_empty"
    SCOPE_CUT_TOO_LONG = "milestone.scope_cut_too_long"  # max, length


def actor_for(person: str) -> str:
    """The audit log's name for someone acting from Slack."""
    return f"slack:{person}"


# --- who may ----------------------------------------------------------------------------------


def check_can_act(session: Session, *, milestone_id: int, person: str) -> Milestone:
    """The milestone, if `person` (a Slack user ID) may act on it: its initiative's owner, the
    initiative's team lead, or an admin. NotFound when it is not (or no longer) in the plan,
    NotAllowed for anyone else. One query, so a button can check before it opens a modal.
    """
    found = _live(session, milestone_id, asker=person)
    allowed = person in (found.owner_slack_id, found.lead_slack_id) or found.asker_is_admin
    if not allowed:
        raise NotAllowed(
            problem(
                MilestoneProblem.NOT_ALLOWED,
                milestone=found.milestone.title,
                initiative=found.initiative.title,
            )
        )
    return found.milestone


def check_open(milestone: Milestone) -> None:
    """A UserError unless the milestone is still open (neither done nor descoped)."""
    if milestone.status == MilestoneStatus.DONE:
        raise UserError(problem(MilestoneProblem.ALREADY_DONE, milestone=milestone.title))
    if milestone.status != MilestoneStatus.OPEN:
        raise UserError(problem(MilestoneProblem.ALREADY_DESCOPED, milestone=milestone.title))


def _live(
    session: Session, milestone_id: int, *, asker: str | None = None
) -> plan.MilestoneAndPeople:
    found = plan.milestone_and_people(
        session=session, milestone_id=milestone_id, asker_slack_id=asker
    )
    if found is None:
        raise NotFound(problem(MilestoneProblem.NOT_FOUND))
    if found.milestone.archived or found.initiative.archived:
        raise NotFound(problem(MilestoneProblem.ARCHIVED, milestone=found.milestone.title))
    return found


# --- the checks of each change ----------------------------------------------------------------


def check_new_due(milestone: Milestone, new_due: date, *, today: date) -> None:
    """A new date must differ from the current one and not lie before `today` (plan timezone).

    Today itself is allowed: a due date ends at midnight in the plan's timezone, so a milestone
    due today is not missed yet.
    """
    if new_due == milestone.due:
        raise UserError(
            problem(
                MilestoneProblem.NEW_DATE_SAME,
                Ids.NEW_DATE_BLOCK,
                milestone=milestone.title,
                due=milestone.due.isoformat(),
            )
        )
    if new_due < today:
        raise UserError(
            problem(MilestoneProblem.NEW_DATE_IN_PAST, Ids.NEW_DATE_BLOCK, today=today.isoformat())
        )


def clean_scope_cut(scope_cut: str) -> str:
    """What is cut, stripped; a UserError when it is empty or longer than SCOPE_CUT_MAX."""
    cleaned = scope_cut.strip()
    if not cleaned:
        raise UserError(problem(MilestoneProblem.SCOPE_CUT_EMPTY, Ids.SCOPE_CUT_BLOCK))
    if len(cleaned) > SCOPE_CUT_MAX:
        raise UserError(
            problem(
                MilestoneProblem.SCOPE_CUT_TOO_LONG,
                Ids.SCOPE_CUT_BLOCK,
                max=SCOPE_CUT_MAX,
                length=len(cleaned),
            )
        )
    return cleaned


def plan_today(session: Session, now: datetime) -> date:
    """Today in the plan's timezone, where due dates end at midnight."""
    return local_date(now, plan_zone(plan.plan_timezone(session=session)))


# --- changes, checked -------------------------------------------------------------------------


def mark_done(session: Session, *, milestone_id: int, person: str, now: datetime) -> bool:
    """`person` marks the milestone done; False when it already was (a double click)."""
    check_can_act(session, milestone_id=milestone_id, person=person)
    return apply_mark_done(session, milestone_id=milestone_id, actor=actor_for(person), now=now)


def move_due(
    session: Session,
    *,
    milestone_id: int,
    person: str,
    new_due: date,
    now: datetime,
    seen_due: date | None = None,
) -> bool:
    """`person` moves the milestone's due date; `original_due` keeps the first planned date.

    `seen_due` is the due date the person saw when choosing (the modal keeps it): when the
    milestone already stands at `new_due` but the person saw another date, the move was made
    already (a retried submission) and False is returned; without it, or when they saw the
    current date, choosing the current date is a mistake, reported as such.
    """
    check_can_act(session, milestone_id=milestone_id, person=person)
    return apply_move_due(
        session,
        milestone_id=milestone_id,
        actor=actor_for(person),
        new_due=new_due,
        now=now,
        seen_due=seen_due,
    )


def descope(
    session: Session, *, milestone_id: int, person: str, scope_cut: str, now: datetime
) -> bool:
    """`person` cuts the milestone's scope, saying what is cut; False when that was already done."""
    check_can_act(session, milestone_id=milestone_id, person=person)
    return apply_descope(
        session, milestone_id=milestone_id, actor=actor_for(person), scope_cut=scope_cut, now=now
    )


# --- changes, for callers that checked who may themselves --------------------------------------


def apply_mark_done(session: Session, *, milestone_id: int, actor: str, now: datetime) -> bool:
    milestone = _live(session, milestone_id).milestone
    if milestone.status == MilestoneStatus.DONE:
        return False
    check_open(milestone)
    before = _state(milestone)
    key = milestone.key
    if not plan.complete_open_milestone(session=session, milestone_id=milestone_id, at=now):
        return _lost_race(session, milestone_id, lambda m: m.status == MilestoneStatus.DONE)
    after = {**before, "status": MilestoneStatus.DONE, "completed_at": now}
    _audit(session, actor=actor, action="mark_done", key=key, before=before, after=after, now=now)
    return True


def apply_move_due(
    session: Session,
    *,
    milestone_id: int,
    actor: str,
    new_due: date,
    now: datetime,
    seen_due: date | None = None,
) -> bool:
    milestone = _live(session, milestone_id).milestone
    check_open(milestone)
    if new_due == milestone.due and seen_due is not None and seen_due != milestone.due:
        return False  # already moved to this date, from the same form: a repeat
    check_new_due(milestone, new_due, today=plan_today(session, now))
    before = _state(milestone)
    key, from_due = milestone.key, milestone.due
    if not plan.move_open_milestone(
        session=session, milestone_id=milestone_id, from_due=from_due, to_due=new_due
    ):
        return _lost_race(session, milestone_id, lambda m: m.due == new_due)
    expected = before["expected_due"]
    after = {
        **before,
        "due": new_due,
        "expected_due": expected if expected is not None and expected > new_due else None,
    }
    _audit(session, actor=actor, action="move_due", key=key, before=before, after=after, now=now)
    return True


def apply_descope(
    session: Session, *, milestone_id: int, actor: str, scope_cut: str, now: datetime
) -> bool:
    cleaned = clean_scope_cut(scope_cut)
    milestone = _live(session, milestone_id).milestone
    if milestone.status == MilestoneStatus.DESCOPED and milestone.scope_note == cleaned:
        return False  # the same cut again: a repeat
    check_open(milestone)
    before = _state(milestone)
    key = milestone.key
    if not plan.descope_open_milestone(
        session=session, milestone_id=milestone_id, scope_note=cleaned
    ):
        return _lost_race(
            session,
            milestone_id,
            lambda m: m.status == MilestoneStatus.DESCOPED and m.scope_note == cleaned,
        )
    after = {**before, "status": MilestoneStatus.DESCOPED, "scope_note": cleaned}
    _audit(session, actor=actor, action="descope", key=key, before=before, after=after, now=now)
    return True


def _lost_race(session: Session, milestone_id: int, wanted: Callable[[Milestone], bool]) -> bool:
    """The conditional UPDATE matched nothing: someone changed the milestone since it was read.

    False when they made the very change asked for (a concurrent double click); otherwise the
    problem its state now shows.
    """
    milestone = _live(session, milestone_id).milestone
    if wanted(milestone):
        return False
    check_open(milestone)
    raise UserError(problem(MilestoneProblem.CHANGED_MEANWHILE, milestone=milestone.title))


def _state(milestone: Milestone) -> dict[str, Any]:
    """The fields a hand change touches, as stored (dates as dates: the audit log writes ISO)."""
    return {
        "status": milestone.status,
        "due": milestone.due,
        "original_due": milestone.original_due,
        "expected_due": milestone.expected_due,
        "completed_at": milestone.completed_at,
        "scope_note": milestone.scope_note,
    }


def _audit(
    session: Session,
    *,
    actor: str,
    action: str,
    key: str,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="milestone",
        entity_key=key,
        before=before,
        after=after,
        now=now,
    )
