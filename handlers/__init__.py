"""Bolt listeners, one module per Slack surface; `register_all` wires every area into the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services import Services


def register_all(app: App, services: Services) -> None:
    """Register middleware, the error handler, then each area's listeners (one line per area).

    Every listener registered on `app` from here on, in any area, is guarded (handlers/guard.py).
    """
    from handlers import errors, guard, middleware

    middleware.register(app, services)
    errors.register(app, services)
    guard.guard_app(app, services)
    from handlers.actions import pulse as pulse_actions
    from handlers.commands import pulse as pulse_command
    from handlers.views import pulse as pulse_views

    pulse_actions.register(app, services)
    pulse_command.register(app, services)
    pulse_views.register(app, services)
    from handlers.actions import share as share_action
    from handlers.commands import kpi as kpi_command
    from handlers.commands import plan as plan_command
    from handlers.events import home as home_event

    share_action.register(app, services)
    kpi_command.register(app, services)
    plan_command.register(app, services)
    home_event.register(app, services)
