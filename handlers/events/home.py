"""App Home: rebuilt from the live plan and published every time someone opens the Home tab."""

from __future__ import annotations

from typing import Any

from bot.home import publish_home
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import payload_str


def register(app: GuardedApp, services: Services) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any]) -> None:
        # The same event fires for the Messages tab; only the Home tab has a view to publish.
        if event.get("tab", "home") != "home":
            return
        publish_home(services, user_id=payload_str(event, "user"), now=services.clock())
