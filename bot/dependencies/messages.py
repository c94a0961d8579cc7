"""Dependency messages rendered from what is stored: the request, its owner's notices, the modal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.dependencies.rules import REASON_MAX, DependencyAction, buttons_for
from bot.row_ids import is_row_id
from bot.timezones import plan_zone
from storage.dependencies import RequestView
from storage.models import DependencyState, Person
from templates import Trusted, render_json, render_mrkdwn
from templates.ids import CantMakeItIds, DependencyIds

Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class Rendered:
    text: str
    blocks: Blocks


STATE_LABELS = {
    DependencyState.REQUESTED: "requested",
    DependencyState.ACKNOWLEDGED: "acknowledged",
    DependencyState.AT_RISK: "at risk",
    DependencyState.BLOCKED: "can't make it",
    DependencyState.DELIVERED: "delivered",
}


def _who(person: Person | None) -> str:
    """A person as a message names them: a mention, else their name (escaped by the template)."""
    if person is None:
        return "someone"
    if person.slack_id:
        return Trusted(f"<@{person.slack_id}>")
    return (person.name or person.email or "someone")[:80]


def _last_day(deadline: datetime | None, plan_tz: str | None) -> date | None:
    """The plan-timezone day whose midnight is `deadline`: "by the end of" that day."""
    if deadline is None:
        return None
    return (deadline - timedelta(microseconds=1)).astimezone(plan_zone(plan_tz)).date()


def _context(view: RequestView, ack_due_at: datetime | None, plan_tz: str | None) -> dict[str, Any]:
    dependency = view.dependency
    milestone = view.milestone
    return {
        "ids": DependencyIds,
        "dependency_id": dependency.id,
        "state": dependency.state,
        "archived": dependency.archived,
        "need": dependency.need,
        "needed_by": dependency.needed_by,
        "initiative": view.initiative.title,
        "state_label": STATE_LABELS.get(DependencyState(dependency.state), dependency.state)
        if dependency.state in set(DependencyState)
        else dependency.state,
        "owner": _who(view.owner),
        "requesting_team": view.requesting_team.name if view.requesting_team else None,
        "provider": view.provider.name,
        "milestone": {"title": milestone.title, "due": milestone.due} if milestone else None,
        "ack_day": _last_day(ack_due_at or dependency.ack_due_at, plan_tz),
        "acknowledged_at": dependency.acknowledged_at,
        "acknowledged_by": _who(view.acknowledged_by),
        "acknowledged_by_known": view.acknowledged_by is not None,
        "changed_at": dependency.state_changed_at,
        "changed_by": _who(view.changed_by),
        "changed_by_known": view.changed_by is not None,
        "note": dependency.note,
        "alternative_date": dependency.alternative_date,
        "delivered_at": dependency.delivered_at,
        "buttons": [str(b) for b in buttons_for(dependency.state, archived=dependency.archived)],
        "actions": DependencyAction,
    }


def request_message(
    view: RequestView, *, plan_tz: str | None, ack_due_at: datetime | None = None
) -> Rendered:
    """The request in the provider team's channel, as its dependency stands (or "replaced").

    `ack_due_at` is the deadline of a request about to be posted, before it is stored.
    """
    if view.replaced:
        context = {"initiative": view.initiative.title, "provider": view.provider.name}
        return Rendered(
            text=render_mrkdwn("blocks/dependency_request_replaced_text.txt.j2", **context),
            blocks=render_json("blocks/dependency_request_replaced.json.j2", **context),
        )
    context = _context(view, ack_due_at, plan_tz)
    return Rendered(
        text=render_mrkdwn("blocks/dependency_request_text.txt.j2", **context),
        blocks=render_json("blocks/dependency_request.json.j2", **context),
    )


def owner_notice(view: RequestView, action: DependencyAction, *, plan_tz: str | None) -> Rendered:
    """The DM telling the requesting owner what the provider team did."""
    context = {**_context(view, None, plan_tz), "action": str(action)}
    return Rendered(
        text=render_mrkdwn("blocks/dependency_notice_text.txt.j2", **context),
        blocks=render_json("blocks/dependency_notice.json.j2", **context),
    )


def form_metadata(dependency_id: int) -> str:
    return json.dumps({"dependency_id": dependency_id})


def dependency_id_in(private_metadata: str | None) -> str | None:
    """The dependency id a submitted form names, as text (checked by `dependency_id_from`)."""
    try:
        value = json.loads(private_metadata or "")["dependency_id"]
    except (ValueError, TypeError, KeyError):
        return None
    return str(value) if is_row_id(value) else None


def cant_make_it_view(dependency_id: int) -> dict[str, Any]:
    """The "Can't make it" form: static, so it opens inside the trigger_id's 3 seconds."""
    return dict(
        render_json(
            "blocks/dependency_cant_make_it.json.j2",
            ids=CantMakeItIds,
            metadata=form_metadata(dependency_id),
            reason_max=REASON_MAX,
        )
    )


def form_message_view(message: Trusted) -> dict[str, Any]:
    """The modal saying why the form cannot be used; `message` is mrkdwn already worded."""
    return dict(
        render_json("blocks/dependency_form_message.json.j2", ids=CantMakeItIds, message=message)
    )
