"""Global middleware: Slack retries an event until it sees a 2xx, so each event_id is processed once.

An event's ID is claimed before its listener runs, and given back when the listener fails
(`release_claim`, called from the error paths in handlers/errors.py): Slack's retry of a failed
event then does the work, while a retry of one that succeeded finds the claim and does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.services import Services
from storage.db import session_scope
from storage.events import claim_event, release_event

log = logging.getLogger(__name__)

# The request context key naming the event ID this delivery claimed (and may have to give back).
CLAIMED_EVENT = "planpulse_claimed_event_id"

# A failing listener often means a failing database: give the release a few short chances.
RELEASE_PAUSES = (0.2, 0.5, 1.0)


def register(app: App, services: Services) -> None:
    @app.use
    def deduplicate_events(
        body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse | None]
    ) -> BoltResponse | None:
        if not isinstance(body, dict) or body.get("type") != "event_callback":
            return next()
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            log.warning("event_callback without an event_id; processing it undeduplicated")
            return next()
        try:
            # Its own short transaction: the claim must be visible to a concurrent retry at once.
            with session_scope(services.engine) as session:
                fresh = claim_event(session=session, event_id=event_id, now=services.clock())
        except SQLAlchemyError as exc:
            # Not recorded, so not processed: a non-2xx makes Slack deliver it again later.
            log.warning("could not claim event %s (%s); asking Slack to retry it", event_id, exc)
            return BoltResponse(status=503, body="")
        if not fresh:
            log.info("event %s already processed; acknowledging the retry only", event_id)
            return BoltResponse(status=200, body="")
        context[CLAIMED_EVENT] = event_id
        return next()


def release_claim(services: Services, context: Any) -> None:
    """The listener of an event this delivery claimed failed: forget the ID so a retry redoes it."""
    event_id = context.get(CLAIMED_EVENT) if isinstance(context, dict) else None
    if not isinstance(event_id, str):
        return  # not an event, or one this delivery did not claim (another may be processing it)
    for pause in (*RELEASE_PAUSES, None):
        try:
            with session_scope(services.engine) as session:
                release_event(session=session, event_id=event_id)
        except SQLAlchemyError as exc:
            if pause is None:
                log.error(
                    "event %s failed and stays claimed: Slack's retry will skip it (%s)",
                    event_id,
                    exc,
                )
                return
            time.sleep(pause)
            continue
        context.pop(CLAIMED_EVENT, None)
        log.info("event %s failed; released so that Slack's retry processes it", event_id)
        return
