"""Global middleware: Slack retries an event until it sees a 2xx, so each event_id is processed once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse

from bot.clock import utcnow
from bot.services import Services
from storage.db import session_scope
from storage.events import claim_event

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.use
    def deduplicate_events(body: dict[str, Any], next: Callable[[], Any]) -> BoltResponse | None:
        if not isinstance(body, dict) or body.get("type") != "event_callback":
            return next()
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            log.warning("event_callback without an event_id; processing it undeduplicated")
            return next()
        # Its own short transaction: the claim must be visible to a concurrent retry at once.
        with session_scope(services.engine) as session:
            fresh = claim_event(session=session, event_id=event_id, now=utcnow())
        if not fresh:
            log.info("event %s already processed; acknowledging the retry only", event_id)
            return BoltResponse(status=200, body="")
        return next()
