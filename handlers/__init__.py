"""Bolt listeners, one module per Slack surface; `register_all` wires every area into the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services import Services


def register_all(app: App, services: Services) -> None:
    """Register middleware, the error handler, then each area's listeners.

    An area is handed a `GuardedApp`, not the Bolt app: each listener it registers is guarded
    (handlers/guard.py), so an exception after its ack is answered politely, never by Bolt.
    """
    # Imported here, not at module level: importing `handlers` must not pull in Bolt and the
    # whole core (the CLI's plan commands import nothing of Slack).
    from handlers import deadline, errors, guard, middleware
    from handlers.actions import decision as decision_actions
    from handlers.actions import dependency as dependency_actions
    from handlers.actions import follow_through as follow_through_actions
    from handlers.actions import milestone as milestone_actions
    from handlers.actions import pulse as pulse_actions
    from handlers.actions import share
    from handlers.actions import vote as vote_actions
    from handlers.commands import decide, kpi, plan
    from handlers.commands import pulse as pulse_command
    from handlers.events import home
    from handlers.views import decision as decision_views
    from handlers.views import dependency as dependency_views
    from handlers.views import follow_through as follow_through_views
    from handlers.views import milestone as milestone_views
    from handlers.views import pulse as pulse_views

    deadline.register(app, services)  # first: the deadline counts from the request's arrival
    middleware.register(app, services)
    errors.register(app, services)
    listeners = guard.GuardedApp(app, services)
    areas = (
        pulse_actions,
        pulse_command,
        pulse_views,
        milestone_actions,
        milestone_views,
        dependency_actions,
        dependency_views,
        decision_actions,
        decision_views,
        decide,
        vote_actions,
        follow_through_actions,
        follow_through_views,
        share,
        kpi,
        plan,
        home,
    )
    for area in areas:
        area.register(listeners, services)
