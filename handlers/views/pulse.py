"""The "Add details" modal's submission: the answer recorded, or field errors in the modal.

A UserError (a bad field, not the owner, the period over) is raised before the ack, so
handlers/errors.py words it as the modal's field errors, each under its block; an answer the
database could not take (NotSaved) is said there too.
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
from storage.db import Saving, once_saved, transaction
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
        # One transaction: a field error rolls back, so nothing of the answer is saved. Before
        # the ack, so a NotSaved (the database stayed away) is said in the modal, still open.
        recorded = transaction(
            services.engine,
            lambda session: record_details(
                session,
                pulse_id=pulse_id,
                person=user,
                answer=read_details(
                    session, pulse_id=pulse_id, person=user, values=values, now=now, listed=listed
                ),
                now=now,
            ),
            what=Saving.PULSE_ANSWER,
        )
        ack()
        with once_saved(Saving.PULSE_ANSWER):  # committed: a failure now is no failed answer
            if recorded.created:  # open polls about the initiative hear of a new answer
                after_pulse_answer(services, recorded.answer_id)
            refresh_prompt(services, pulse_id=pulse_id, now=now)
            refresh_requests(services, dependency_ids=recorded.dependencies_changed, now=now)
            refresh_home(services, user_id=user, now=now)
