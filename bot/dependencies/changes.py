"""Changing a dependency's state from Slack: who may, the rule, the write that counts once, the audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from bot import audit
from bot.dependencies.rules import (
    DependencyAction,
    DependencyProblem,
    StateChange,
    check_live,
    not_provider,
    plan_change,
)
from bot.errors import NotFound, UserError
from bot.problems import problem
from bot.row_ids import row_id_in
from storage import dependencies as queries
from storage.models import Dependency, Person
from storage.people import person_by_slack_id


@dataclass(frozen=True)
class ChangeOutcome:
    """What one call did: `changed` is False for a repeat (a double click) or a lost race."""

    dependency_id: int
    action: DependencyAction
    changed: bool
    before: str
    after: str


def dependency_id_from(value: str | None) -> int:
    """A button's value or a form's metadata: anything but a row id is a tampered or stale request."""
    dependency_id = row_id_in(value)
    if dependency_id is None:
        raise NotFound(problem(DependencyProblem.NOT_FOUND))
    return dependency_id


def check_provider(
    session: Session,
    *,
    dependency_id: int,
    user: str,
    message_ts: str | None = None,
    field: str | None = None,
) -> tuple[Dependency, Person]:
    """The dependency and the person pressing, who must be its provider team's lead, member or an admin.

    `message_ts` is the message the button was on: a button can act only on the dependency of
    its own request message, and only on its current revision.
    """
    dependency = check_live(queries.dependency_by_id(session=session, dependency_id=dependency_id))
    team = queries.team_by_id(session=session, team_id=dependency.provider_team_id)
    team_name = team.name if team is not None else "the provider team"
    person = person_by_slack_id(session=session, slack_id=user)
    allowed = (
        person is not None
        and person.id is not None
        and (
            person.is_admin
            or queries.is_team_member(
                session=session, team_id=dependency.provider_team_id, person_id=person.id
            )
        )
    )
    if not allowed or person is None:
        raise not_provider(team_name, field)
    if message_ts:
        request = queries.request_of_message(session=session, message_ts=message_ts)
        # A message the bot has not recorded yet is a request still being posted: allowed.
        if request is not None and request.dependency_id != dependency.id:
            raise UserError(problem(DependencyProblem.WRONG_MESSAGE, field))
        if request is not None and request.revision != dependency.request_revision:
            raise UserError(problem(DependencyProblem.REPLACED, field, need=dependency.need))
    return dependency, person


def change_state(
    session: Session,
    *,
    dependency: Dependency,
    action: DependencyAction,
    actor: str,
    by_person_id: int | None,
    now: datetime,
    reason: str | None = None,
    alternative_date: date | None = None,
    field: str | None = None,
) -> ChangeOutcome:
    """Apply `action` through the rule; written only if the row is still as it was read, then audited."""
    assert dependency.id is not None
    change = plan_change(
        dependency,
        action,
        now=now,
        by_person_id=by_person_id,
        reason=reason,
        alternative_date=alternative_date,
        field=field,
    )
    if change is None:
        return ChangeOutcome(dependency.id, action, False, dependency.state, dependency.state)
    written = queries.write_state(
        session=session,
        dependency_id=dependency.id,
        expected_state=dependency.state,
        expected_revision=dependency.request_revision,
        values=change.values,
    )
    if written:
        _audit(session, dependency, change, actor=actor, now=now)
    return ChangeOutcome(dependency.id, action, written, change.before, change.after)


def _audit(
    session: Session, dependency: Dependency, change: StateChange, *, actor: str, now: datetime
) -> None:
    before = {name: getattr(dependency, name) for name in change.values}
    audit.record(
        session,
        actor=actor,
        action=str(change.action),
        entity="dependency",
        entity_key=dependency.key,
        before={k: v for k, v in before.items() if k not in ("state_changed_at",)},
        after={k: v for k, v in change.values.items() if k not in ("state_changed_at",)},
        now=now,
    )
