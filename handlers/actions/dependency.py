"""The buttons of a dependency request: Acknowledge, Can't make it (opens the form), Delivered.

A refusal (not the provider team, a tampered value, delivered before acknowledged) is a
UserError raised after the ack: handlers/guard.py answers it through the response_url.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack

from bot.dependencies.actions import check_may_decline, press
from bot.dependencies.changes import dependency_id_from
from bot.dependencies.messages import cant_make_it_view, form_message_view
from bot.dependencies.rules import DependencyAction
from bot.errors import UserError
from bot.services import Services
from handlers.errors import say_error
from handlers.guard import GuardedApp
from handlers.payload import optional_str, payload_str
from templates.ids import DependencyIds

PRESSES = {
    DependencyIds.ACKNOWLEDGE: DependencyAction.ACKNOWLEDGE,
    DependencyIds.DELIVERED: DependencyAction.DELIVER,
}


def register(app: GuardedApp, services: Services) -> None:
    for action_id, what in PRESSES.items():
        app.action(action_id)(_press(services, what))
    app.action(DependencyIds.CANT_MAKE_IT)(_open_form(services))


def _press(services: Services, what: DependencyAction) -> Callable[..., None]:
    def press_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        press(
            services,
            user=payload_str(body, "user", "id"),
            value=optional_str(action, "value"),
            message_ts=optional_str(body, "container", "message_ts"),
            action=what,
            now=services.clock(),
        )

    return press_button


def _open_form(services: Services) -> Callable[..., None]:
    def open_form(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        dependency_id = dependency_id_from(optional_str(action, "value"))
        # The trigger_id lives 3 seconds: the form needs no query, so it opens first.
        view_id = services.slack.open_view(
            trigger_id=payload_str(body, "trigger_id"), view=cant_make_it_view(dependency_id)
        )
        try:
            check_may_decline(
                services,
                user=payload_str(body, "user", "id"),
                dependency_id=dependency_id,
                message_ts=optional_str(body, "container", "message_ts"),
            )
        except UserError as exc:
            # The form says why it cannot be used; the guard also answers in the channel.
            services.slack.update_view(view_id=view_id, view=form_message_view(say_error(exc)))
            raise

    return open_form
