"""The "Can't make it" form's submission: recorded, or field errors in the form.

A UserError (an empty reason, a past date, not the provider team) is raised before the ack, so
handlers/errors.py words it as the modal's field errors, each under its block.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.dependencies.actions import after_change, decline
from bot.dependencies.changes import dependency_id_from
from bot.dependencies.messages import dependency_id_in
from bot.dependencies.rules import DependencyProblem
from bot.errors import UserError
from bot.problems import problem
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import form_values, payload_str
from templates.ids import CantMakeItIds


def register(app: GuardedApp, services: Services) -> None:
    @app.view(CantMakeItIds.VIEW)
    def submit_cant_make_it(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        now = services.clock()
        raw_id = dependency_id_in(view.get("private_metadata"))
        if raw_id is None:
            raise UserError(problem(DependencyProblem.FORM_OUT_OF_DATE, CantMakeItIds.REASON_BLOCK))
        outcome = decline(
            services,
            user=payload_str(body, "user", "id"),
            dependency_id=dependency_id_from(raw_id),
            values=form_values(view),
            now=now,
        )
        ack()
        after_change(services, outcome, now)
