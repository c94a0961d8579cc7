"""The New date and Descope modals' submissions: the change applied, or field errors in the modal.

Everything is read and checked before the ack, in one transaction: a UserError (a bad date, an
empty cut, not allowed, already done) rolls it back and handlers/errors.py shows it under the
modal's field; a good submission commits, the ack closes the modal, and the presser is told.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack

from bot.alerts import run_detection
from bot.home import refresh_home
from bot.milestones.buttons import Submitted, submit_descope, submit_new_date, tell_presser
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import form_values, payload_str
from storage.db import session_scope
from templates.ids import MilestoneIds


def register(app: GuardedApp, services: Services) -> None:
    app.view(MilestoneIds.NEW_DATE_VIEW)(_submitted(services, submit_new_date))
    app.view(MilestoneIds.DESCOPE_VIEW)(_submitted(services, submit_descope))


def _submitted(services: Services, apply: Callable[..., Submitted]) -> Callable[..., None]:
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, now = payload_str(body, "user", "id"), services.clock()
        with session_scope(services.engine) as session:
            done = apply(
                session,
                private_metadata=view.get("private_metadata"),
                values=form_values(view),
                person=user,
                now=now,
            )
        ack()
        tell_presser(services, user=user, response_url=done.response_url, text=done.reply)
        # The plan moved: its alerts say so now, not at the next tick, and so does Home.
        run_detection(services, now)
        refresh_home(services, user_id=user, now=now)

    return submit
