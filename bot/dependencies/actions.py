"""What the provider team does on a request: Acknowledge, Can't make it (a form), Delivered.

Each press is checked on the server (the provider team's lead, its members, admins), goes
through the one rule (`bot.dependencies.rules`), is written once however often it arrives, and
then the request message is re-rendered in place and the requesting owner told in a DM, only by
the press that changed something.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from bot.alerts import run_detection
from bot.decisions.news import after_delivery
from bot.dependencies.changes import ChangeOutcome, change_state, check_provider, dependency_id_from
from bot.dependencies.messages import owner_notice
from bot.dependencies.requests import refresh_requests
from bot.dependencies.rules import (
    DependencyAction,
    DependencyProblem,
    check_alternative_date,
    check_reason,
)
from bot.errors import UserError
from bot.health import plan_today
from bot.problems import Problem, problem
from bot.services import Services
from bot.slack.errors import SlackError
from storage import dependencies as queries
from storage.db import session_scope
from storage.models import DependencyState
from storage.plan import plan_timezone
from templates.ids import CantMakeItIds as Form

log = logging.getLogger(__name__)

# The requesting owner hears about these; the owner's own reports (late) need no DM.
TOLD_TO_OWNER = frozenset(
    {DependencyAction.ACKNOWLEDGE, DependencyAction.CANT_MAKE_IT, DependencyAction.DELIVER}
)


def press(
    services: Services,
    *,
    user: str,
    value: str | None,
    message_ts: str | None,
    action: DependencyAction,
    now: datetime,
) -> ChangeOutcome:
    """A button on a request: Acknowledge or Delivered. A UserError when it is refused."""
    dependency_id = dependency_id_from(value)
    with session_scope(services.engine) as session:
        dependency, person = check_provider(
            session, dependency_id=dependency_id, user=user, message_ts=message_ts
        )
        outcome = change_state(
            session,
            dependency=dependency,
            action=action,
            actor=f"slack:{user}",
            by_person_id=person.id,
            now=now,
        )
    after_change(services, outcome, now)
    return outcome


def check_may_decline(
    services: Services, *, user: str, dependency_id: int, message_ts: str | None
) -> None:
    """Before the form is filled in: this person may say "can't make it" about this dependency now."""
    with session_scope(services.engine) as session:
        dependency, _ = check_provider(
            session, dependency_id=dependency_id, user=user, message_ts=message_ts
        )
        if dependency.state == DependencyState.DELIVERED:
            raise UserError(problem(DependencyProblem.ALREADY_DELIVERED, need=dependency.need))


def decline(
    services: Services,
    *,
    user: str,
    dependency_id: int,
    values: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> ChangeOutcome:
    """The "Can't make it" form submitted: checked field by field, then recorded (before the ack).

    Every problem is located at a form block, so the modal shows it as a field error and nothing
    is written.
    """
    with session_scope(services.engine) as session:
        try:
            dependency, person = check_provider(session, dependency_id=dependency_id, user=user)
        except UserError as refused:  # about the whole form: shown on its first field
            located = (p if p.field else p.at(Form.REASON_BLOCK) for p in refused.problems)
            raise type(refused)(*located) from None
        today = plan_today(now, plan_timezone(session=session))
        reason, alternative, problems = read_form(values, today=today)
        if problems:
            raise UserError(*problems)
        outcome = change_state(
            session,
            dependency=dependency,
            action=DependencyAction.CANT_MAKE_IT,
            actor=f"slack:{user}",
            by_person_id=person.id,
            now=now,
            reason=reason,
            alternative_date=alternative,
            field=Form.REASON_BLOCK,
        )
    return outcome


def read_form(
    values: Mapping[str, Mapping[str, Any]], *, today: date
) -> tuple[str | None, date | None, list[Problem]]:
    """The reason and the alternative date as typed, with every problem at its block."""
    reason_element = (values.get(Form.REASON_BLOCK) or {}).get(Form.REASON) or {}
    date_element = (values.get(Form.DATE_BLOCK) or {}).get(Form.DATE) or {}
    raw_reason = reason_element.get("value") if isinstance(reason_element, dict) else None
    raw_date = date_element.get("selected_date") if isinstance(date_element, dict) else None
    reason, reason_problems = check_reason(
        raw_reason if isinstance(raw_reason, str) else None, Form.REASON_BLOCK
    )
    alternative, date_problems = check_alternative_date(
        raw_date if isinstance(raw_date, str) else None, today=today, field=Form.DATE_BLOCK
    )
    return reason, alternative, reason_problems + date_problems


def after_change(services: Services, outcome: ChangeOutcome, now: datetime) -> None:
    """The request shows the change at once and its owner hears of it; only for a real change."""
    if not outcome.changed:
        return
    refresh_requests(services, dependency_ids=[outcome.dependency_id], now=now)
    if outcome.action in TOLD_TO_OWNER:
        tell_owner(services, outcome)
    if outcome.action == DependencyAction.DELIVER:
        # An open poll about the milestone it feeds hears of it in its thread.
        after_delivery(services, outcome.dependency_id)
    # Its alerts (unacknowledged, blocked, the milestone it feeds) follow now, not next tick.
    run_detection(services, now)


def tell_owner(services: Services, outcome: ChangeOutcome) -> None:
    with session_scope(services.engine) as session:
        view = queries.current_request_view(session=session, dependency_id=outcome.dependency_id)
        plan_tz = plan_timezone(session=session)
    if view is None or view.owner is None or not view.owner.slack_id:
        log.info("Nobody to tell about dependency %s (%s)", outcome.dependency_id, outcome.action)
        return
    rendered = owner_notice(view, outcome.action, plan_tz=plan_tz)
    try:
        services.slack.post_message(
            channel=view.owner.slack_id, text=rendered.text, blocks=rendered.blocks
        )
    except SlackError as exc:
        log.warning(
            "Could not tell %s about dependency %s: %s",
            view.owner.slack_id,
            view.dependency.key,
            exc.code,
        )
