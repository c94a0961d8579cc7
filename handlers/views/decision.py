"""The framing modal's submission: the poll opened (and posted), or field errors in the modal.

Everything is read and checked before the ack, in one transaction: a UserError (no date, a date
not after the due date, not allowed) rolls it back and handlers/errors.py shows it under its
field; a good submission commits, the ack closes the modal, then the poll is posted.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.decisions.framing import after_submission, submit_framing
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import form_values, payload_str
from storage.db import session_scope
from templates.ids import FramingIds


def register(app: GuardedApp, services: Services) -> None:
    @app.view(FramingIds.VIEW)
    def submit_framing_form(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, now = payload_str(body, "user", "id"), services.clock()
        with session_scope(services.engine) as session:
            submitted = submit_framing(
                session,
                private_metadata=view.get("private_metadata"),
                values=form_values(view),
                person=user,
                now=now,
            )
        ack()
        after_submission(services, submitted, user=user, now=now)
