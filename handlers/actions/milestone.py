"""A milestone's buttons: Mark done at once; New date and Descope open their modal.

The modals are opened only for someone allowed to use them, so the permission check comes
first. It is one primary-key query (bot.milestones.rules.check_can_act), milliseconds against
the trigger_id's 3 seconds, and it spares an outsider a modal that could only refuse them.
Someone not allowed, or a stale or forged button, gets a UserError, which handlers/guard.py
answers through the interaction's response_url (a DM from App Home); nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack

from bot.alerts import run_detection
from bot.home import refresh_home
from bot.milestones.buttons import (
    descope_view,
    milestone_id_from,
    new_date_view,
    reply,
    tell_presser,
)
from bot.milestones.rules import mark_done
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import optional_str, payload_str
from storage.db import session_scope
from templates.ids import MilestoneIds


def register(app: GuardedApp, services: Services) -> None:
    app.action(MilestoneIds.MARK_DONE)(_mark_done(services))
    app.action(MilestoneIds.NEW_DATE)(_open_form(services, new_date_view))
    app.action(MilestoneIds.DESCOPE)(_open_form(services, descope_view))


def _mark_done(services: Services) -> Callable[..., None]:
    def mark_done_pressed(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user, now = payload_str(body, "user", "id"), services.clock()
        milestone_id = milestone_id_from(optional_str(action, "value"))
        with session_scope(services.engine) as session:
            changed = mark_done(session, milestone_id=milestone_id, person=user, now=now)
            text = reply(session, milestone_id, "done", changed)
        response_url = optional_str(body, "response_url")
        tell_presser(services, user=user, response_url=response_url, text=text)
        if changed:  # its missed or at-risk alert resolves now, not at the next tick
            run_detection(services, now)
        # Wherever it was pressed, the presser's Home shows the milestone (and its alert) as it is.
        refresh_home(services, user_id=user, now=now)

    return mark_done_pressed


def _open_form(
    services: Services, build_view: Callable[..., dict[str, Any]]
) -> Callable[..., None]:
    def open_form(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user = payload_str(body, "user", "id")
        milestone_id = milestone_id_from(optional_str(action, "value"))
        with session_scope(services.engine) as session:
            view = build_view(
                session,
                milestone_id=milestone_id,
                person=user,
                response_url=optional_str(body, "response_url"),
            )
        services.slack.open_view(trigger_id=payload_str(body, "trigger_id"), view=view)

    return open_form
