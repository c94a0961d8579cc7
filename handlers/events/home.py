"""App Home: rebuilt from the live plan and published every time someone opens the Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.clock import utcnow
from bot.reports import home_data
from bot.services import Services
from handlers.payload import payload_str
from storage.db import session_scope
from templates.answers import home_view


def register(app: App, services: Services) -> None:
    settings = services.settings

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any]) -> None:
        # The same event fires for the Messages tab; only the Home tab has a view to publish.
        if event.get("tab", "home") != "home":
            return
        user = payload_str(event, "user")
        now = utcnow()
        with session_scope(services.engine) as session:
            view = home_view(
                home_data(session, user, now),
                now=now,
                kpi_command=settings.kpi_command,
                plan_command=settings.plan_command,
            )
        services.slack.publish_home(user_id=user, view=view)
