"""The "Add details" modal's submission: field errors in the modal, or the answer recorded."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.clock import utcnow
from bot.errors import UserError
from bot.home import refresh_home
from bot.pulses.answers import record_answer, refresh_prompt
from bot.pulses.details import InvalidDetails, pulse_id_from, read_details
from bot.services import Services
from handlers.payload import payload_dict, payload_str
from storage.db import session_scope
from templates.ids import PulseDetailsIds


def register(app: App, services: Services) -> None:
    @app.view(PulseDetailsIds.VIEW)
    def submit_details(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        now = utcnow()
        user = payload_str(body, "user", "id")
        pulse_id = pulse_id_from(view.get("private_metadata"))
        values = payload_dict(view, "state", "values")
        try:
            # One transaction: a field error rolls back, so nothing of the answer is saved.
            with session_scope(services.engine) as session:
                details = read_details(
                    session, pulse_id=pulse_id, person=user, values=values, now=now
                )
                record_answer(
                    session,
                    pulse_id=pulse_id,
                    person=user,
                    status=details.status,
                    confidence=details.confidence,
                    kpi_values=details.kpi_values,
                    milestone_updates=details.milestone_updates,
                    blockers=details.blockers,
                    dependency_late=details.dependency_late,
                    now=now,
                )
        except InvalidDetails as exc:
            ack(response_action="errors", errors=exc.errors)
            return
        except UserError as exc:  # not the owner, or the period ended while the modal was open
            ack(
                response_action="errors",
                errors={exc.field or PulseDetailsIds.STATUS_BLOCK: exc.message},
            )
            return
        ack()
        refresh_prompt(services, pulse_id=pulse_id, now=now)
        refresh_home(services, user_id=user, now=now)
