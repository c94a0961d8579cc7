"""App Home: one person's Home tab, built from the live plan and published with views.publish."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.links import MessageLinks
from bot.reports import home_data
from bot.services import Services
from bot.slack.errors import SlackError
from storage.db import session_scope
from templates.answers import home_view

log = logging.getLogger(__name__)


def publish_home(services: Services, *, user_id: str, now: datetime) -> None:
    """Publish `user_id`'s Home tab as the plan stands at `now`."""
    settings = services.settings
    with session_scope(services.engine) as session:
        view = home_view(
            home_data(session, user_id, now, links=MessageLinks(services.slack)),
            now=now,
            kpi_command=settings.kpi_command,
            plan_command=settings.plan_command,
            pulse_command=settings.pulse_command,
        )
    services.slack.publish_home(user_id=user_id, view=view)


def refresh_home(services: Services, *, user_id: str, now: datetime) -> bool:
    """Re-publish the Home tab after something on it changed elsewhere (a pulse answered).

    What changed is already committed: if Slack refuses, Home is stale until the person opens it
    again (which rebuilds it), so the failure is logged and nobody is bothered.
    """
    try:
        publish_home(services, user_id=user_id, now=now)
    except SlackError as exc:
        log.warning("Could not refresh the Home tab of %s: %s", user_id, exc.code)
        return False
    return True
