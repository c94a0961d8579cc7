"""The "This moves us too" modal's submission: the answer and the new date recorded, or field errors.

Read, checked and written before the ack in one transaction: a UserError (no date, a date the
rules refuse, not the person asked) rolls it back and handlers/errors.py shows it under its
field; a good submission commits, the ack closes the modal, then the DM and the thread follow.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.alerts import run_detection
from bot.decisions.knock_on import after_answer, reply, submit_moves_us
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import form_values, payload_str
from storage.db import session_scope
from templates.ids import FollowThroughIds


def register(app: GuardedApp, services: Services) -> None:
    @app.view(FollowThroughIds.MOVES_US_VIEW)
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, now = payload_str(body, "user", "id"), services.clock()
        with session_scope(services.engine) as session:
            knock_on_id = submit_moves_us(
                session,
                private_metadata=view.get("private_metadata"),
                values=form_values(view),
                user=user,
                now=now,
            )
        ack()
        services.slack.post_message(channel=user, text=reply("moves_us"))
        after_answer(services, knock_on_id, now)
        run_detection(services, now)
