"""The "Add details" modal's submission: the answer recorded, or field errors in the modal.

A UserError (a bad field, not the owner, the period over) is raised before the ack, so
handlers/errors.py words it as the modal's field errors, each under its block.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.decisions.news import after_pulse_answer
from bot.dependencies.requests import refresh_requests
from bot.home import refresh_home
from bot.pulses.answers import record_details, refresh_prompt
from bot.pulses.details import listed_dependencies, pulse_id_from, read_details
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import form_values, payload_str
from storage.db import session_scope
from templates.ids import PulseDetailsIds


def register(app: GuardedApp, services: Services) -> None:
    @app.view(PulseDetailsIds.VIEW)
    def submit_details(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        now = services.clock()
        user = payload_str(body, "user", "id")
        metadata = view.get("private_metadata")
        pulse_id = pulse_id_from(metadata)
        values = form_values(view)
        listed = listed_dependencies(metadata)
        # One transaction: a field error rolls back, so nothing of the answer is saved.
        with session_scope(services.engine) as session:
            answer = read_details(
                session, pulse_id=pulse_id, person=user, values=values, now=now, listed=listed
            )
            recorded = record_details(
                session, pulse_id=pulse_id, person=user, answer=answer, now=now
            )
        ack()
        if recorded.created:  # open polls about the initiative hear of a new answer
            after_pulse_answer(services, recorded.answer_id)
        refresh_prompt(services, pulse_id=pulse_id, now=now)
        refresh_requests(services, dependency_ids=recorded.dependencies_changed, now=now)
        refresh_home(services, user_id=user, now=now)
