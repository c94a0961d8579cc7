"""The one rule of a dependency's state: which change is allowed from which state, and what it records.

Buttons, the "Can't make it" modal, a pulse answer's late-dependency field and the plan file's
`state` all call `plan_change`; it returns the columns to write (or None when the change is a
repeat that changes nothing) and raises a UserError with typed problems otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from bot.errors import NotAllowed, NotFound, UserError
from bot.problems import Problem, ProblemCode, problem
from storage.models import Dependency, DependencyState

State = DependencyState
REASON_MAX = 1000


class DependencyProblem(ProblemCode):
    """What can be wrong with changing a dependency's state."""

    NOT_FOUND = "dependency.not_found"
    ARCHIVED = "dependency.archived"  # need
    ALREADY_DELIVERED = "dependency.already_delivered"  # need
    NOT_PROVIDER = "dependency.not_provider"  # team
    WRONG_MESSAGE = "dependency.wrong_message"
    REPLACED = "dependency.replaced"  # need
    NOT_ACKNOWLEDGED = "dependency.not_acknowledged"  # need
    NOT_ALLOWED = "dependency.not_allowed"  # action, state
    REASON_MISSING = "dependency.reason_missing"
    REASON_TOO_LONG = "dependency.reason_too_long"  # max
    NOT_A_DATE = "dependency.not_a_date"
    DATE_IN_PAST = "dependency.date_in_past"
    FORM_OUT_OF_DATE = "dependency.form_out_of_date"


class DependencyAction(StrEnum):
    """A change someone asks for; the audit log names it."""

    ACKNOWLEDGE = "acknowledge"
    CANT_MAKE_IT = "cant_make_it"
    DELIVER = "deliver"
    REPORT_LATE = "report_late"  # the requesting owner, from a pulse answer
    CLEAR_LATE = "clear_late"  # the requesting owner unticks it again
    SET = "set"  # the plan file: the admin's override, any state


# From which states each action may be taken (SET: any).
ALLOWED_FROM: dict[DependencyAction, frozenset[str]] = {
    DependencyAction.ACKNOWLEDGE: frozenset({State.REQUESTED}),
    DependencyAction.CANT_MAKE_IT: frozenset(
        {State.REQUESTED, State.ACKNOWLEDGED, State.AT_RISK, State.BLOCKED}
    ),
    DependencyAction.DELIVER: frozenset({State.ACKNOWLEDGED, State.AT_RISK, State.BLOCKED}),
    DependencyAction.REPORT_LATE: frozenset({State.REQUESTED, State.ACKNOWLEDGED}),
    DependencyAction.CLEAR_LATE: frozenset({State.AT_RISK}),
}


@dataclass(frozen=True)
class StateChange:
    """What a checked change writes: the state it leaves, and every column it sets."""

    action: DependencyAction
    before: str
    after: str
    values: dict[str, Any]


def buttons_for(state: str, *, archived: bool) -> tuple[DependencyAction, ...]:
    """Which buttons a request message offers in `state` (none once delivered or archived)."""
    if archived or state == State.DELIVERED:
        return ()
    shown = []
    if state == State.REQUESTED:
        shown.append(DependencyAction.ACKNOWLEDGE)
    shown.append(DependencyAction.CANT_MAKE_IT)
    if state in ALLOWED_FROM[DependencyAction.DELIVER]:
        shown.append(DependencyAction.DELIVER)
    return tuple(shown)


def check_live(dependency: Dependency | None, field: str | None = None) -> Dependency:
    """The dependency, or NotFound / a UserError when it is gone or archived."""
    if dependency is None or dependency.id is None:
        raise NotFound(problem(DependencyProblem.NOT_FOUND, field))
    if dependency.archived:
        raise UserError(problem(DependencyProblem.ARCHIVED, field, need=dependency.need))
    return dependency


def plan_change(
    dependency: Dependency,
    action: DependencyAction,
    *,
    now: datetime,
    by_person_id: int | None,
    reason: str | None = None,
    alternative_date: date | None = None,
    target: str | None = None,
    field: str | None = None,
) -> StateChange | None:
    """Check `action` against the dependency as stored; the change, or None when it is a repeat.

    Raises a UserError (problems located at `field`) when the action is not allowed. SET (the
    plan file) takes any `target` and only keeps the bookkeeping columns consistent with it.
    """
    check_live(dependency, field)
    if action == DependencyAction.SET:
        if target is None:
            raise ValueError("SET needs a target state")
        return override(dependency, target, now=now, by_person_id=by_person_id)
    if _repeat(dependency, action, reason, alternative_date):
        return None
    _check_allowed(dependency, action, field)
    after, note, alternative = _outcome(dependency, action, reason, alternative_date)
    values = _bookkeeping(
        after,
        now,
        by_person_id,
        note,
        alternative,
        acknowledged_at=dependency.acknowledged_at,
        delivered_at=dependency.delivered_at,
    )
    return StateChange(action=action, before=dependency.state, after=after, values=values)


def override(
    dependency: Dependency, target: str, *, now: datetime, by_person_id: int | None = None
) -> StateChange | None:
    """The plan file's `state`: any state is allowed (it is the admin's word), bookkeeping kept
    consistent with it; None when it changes nothing."""
    if target not in set(State):
        raise ValueError(f"not a dependency state: {target!r}")
    same = dependency.state == target
    values = _bookkeeping(
        target,
        now,
        by_person_id,
        dependency.note if same else None,
        dependency.alternative_date if same else None,
        acknowledged_at=dependency.acknowledged_at,
        delivered_at=dependency.delivered_at,
    )
    if same and _unchanged(dependency, values):
        return None
    return StateChange(
        action=DependencyAction.SET, before=dependency.state, after=target, values=values
    )


def created_values(state: str, *, now: datetime) -> dict[str, Any]:
    """A dependency the plan file creates in `state`: the bookkeeping columns that go with it."""
    if state not in set(State):
        raise ValueError(f"not a dependency state: {state!r}")
    values = _bookkeeping(state, now, None, None, None, acknowledged_at=None, delivered_at=None)
    if state == State.REQUESTED:
        values["state_changed_at"] = None  # nobody changed it: it starts there
    return values


def renewed_values(dependency: Dependency, *, state: str | None, now: datetime) -> dict[str, Any]:
    """What it needs, by when or from whom changed: a new revision, asked for anew.

    The next tick posts a new request (the old one says it was replaced) and the
    acknowledgement clock restarts; the state goes back to requested unless the file sets one.
    """
    target = state or State.REQUESTED
    values: dict[str, Any] = {
        "request_revision": dependency.request_revision + 1,
        "requested_at": None,
        "ack_due_at": None,
        "acknowledged_at": None,
        "acknowledged_by_id": None,
    }
    values.update(created_values(target, now=now))
    values["state_changed_at"] = now
    return values


def _repeat(
    dependency: Dependency,
    action: DependencyAction,
    reason: str | None,
    alternative_date: date | None,
) -> bool:
    """A second click, a retried request, a form sent twice: it changes nothing, and is no error."""
    state = dependency.state
    if action == DependencyAction.ACKNOWLEDGE:
        return state == State.ACKNOWLEDGED
    if action == DependencyAction.DELIVER:
        return state == State.DELIVERED
    if action == DependencyAction.CANT_MAKE_IT:
        return (
            state == State.BLOCKED
            and dependency.note == reason
            and dependency.alternative_date == alternative_date
        )
    if action == DependencyAction.REPORT_LATE:
        # Blocked is already worse than late: the owner's report adds nothing to it.
        return state in (State.AT_RISK, State.BLOCKED)
    if action == DependencyAction.CLEAR_LATE:
        return state != State.AT_RISK
    return False


def _check_allowed(dependency: Dependency, action: DependencyAction, field: str | None) -> None:
    state = dependency.state
    if state in ALLOWED_FROM[action]:
        return
    if state == State.DELIVERED:
        raise UserError(problem(DependencyProblem.ALREADY_DELIVERED, field, need=dependency.need))
    if action == DependencyAction.DELIVER and state == State.REQUESTED:
        raise UserError(problem(DependencyProblem.NOT_ACKNOWLEDGED, field, need=dependency.need))
    raise UserError(
        problem(DependencyProblem.NOT_ALLOWED, field, action=str(action), state=str(state))
    )


def _outcome(
    dependency: Dependency,
    action: DependencyAction,
    reason: str | None,
    alternative_date: date | None,
) -> tuple[str, str | None, date | None]:
    """(state after, note, alternative date) of an allowed action."""
    if action == DependencyAction.ACKNOWLEDGE:
        return State.ACKNOWLEDGED, None, None
    if action == DependencyAction.DELIVER:
        return State.DELIVERED, None, None
    if action == DependencyAction.CANT_MAKE_IT:
        return State.BLOCKED, reason, alternative_date
    if action == DependencyAction.REPORT_LATE:
        return State.AT_RISK, reason, None
    # CLEAR_LATE: back to where it stood before the owner reported it late.
    back = State.ACKNOWLEDGED if dependency.acknowledged_at is not None else State.REQUESTED
    return back, None, None


def _bookkeeping(
    after: str,
    now: datetime,
    by_person_id: int | None,
    note: str | None,
    alternative: date | None,
    *,
    acknowledged_at: datetime | None,
    delivered_at: datetime | None,
) -> dict[str, Any]:
    """Every column a state implies, so no path can leave them disagreeing with the state."""
    values: dict[str, Any] = {
        "state": after,
        "state_changed_at": now,
        "state_changed_by_id": by_person_id,
        "note": note if after in (State.AT_RISK, State.BLOCKED) else None,
        "alternative_date": alternative if after == State.BLOCKED else None,
        "delivered_at": (delivered_at or now) if after == State.DELIVERED else None,
    }
    if after == State.REQUESTED:
        values.update(acknowledged_at=None, acknowledged_by_id=None)
    elif after == State.ACKNOWLEDGED and acknowledged_at is None:
        values.update(acknowledged_at=now, acknowledged_by_id=by_person_id)
    return values


def _unchanged(dependency: Dependency, values: dict[str, Any]) -> bool:
    ignored = {"state_changed_at", "state_changed_by_id"}
    return all(
        getattr(dependency, name) == value for name, value in values.items() if name not in ignored
    )


# --- reading what was typed in "Can't make it" ---------------------------------------------------


def check_reason(reason: str | None, field: str) -> tuple[str | None, list[Problem]]:
    """The reason given, stripped; required, and no longer than REASON_MAX."""
    cleaned = (reason or "").strip()
    if not cleaned:
        return None, [problem(DependencyProblem.REASON_MISSING, field)]
    if len(cleaned) > REASON_MAX:
        return None, [problem(DependencyProblem.REASON_TOO_LONG, field, max=REASON_MAX)]
    return cleaned, []


def check_alternative_date(
    text: str | None, *, today: date, field: str
) -> tuple[date | None, list[Problem]]:
    """The date it could be delivered instead: a real date, today (plan timezone) or later."""
    try:
        chosen = date.fromisoformat(str(text or ""))
    except ValueError:
        return None, [problem(DependencyProblem.NOT_A_DATE, field)]
    if chosen < today:
        return None, [problem(DependencyProblem.DATE_IN_PAST, field)]
    return chosen, []


def not_provider(team_name: str, field: str | None = None) -> NotAllowed:
    return NotAllowed(problem(DependencyProblem.NOT_PROVIDER, field, team=team_name))
