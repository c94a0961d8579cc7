"""Answering a pulse from its buttons: On track / At risk / Off track in one click, or "Add details"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import Ack

from bot.decisions.news import after_pulse_answer
from bot.errors import UserError
from bot.home import refresh_home
from bot.pulses.answers import RecordedAnswer, pulses_of, record_status, refresh_prompt
from bot.pulses.details import details_view, loading_view, message_view
from bot.row_ids import row_id_in
from bot.services import Services
from handlers.errors import say_error
from handlers.guard import GuardedApp
from handlers.payload import BadPayload, optional_str, payload_str
from storage.db import Saving, once_saved, session_scope, transaction
from storage.models import PulseStatus
from templates import render_json
from templates.ids import PulseIds

STATUS_BY_ACTION = {
    PulseIds.ON_TRACK: PulseStatus.ON_TRACK,
    PulseIds.AT_RISK: PulseStatus.AT_RISK,
    PulseIds.OFF_TRACK: PulseStatus.OFF_TRACK,
}


def register(app: GuardedApp, services: Services) -> None:
    for action_id, status in STATUS_BY_ACTION.items():
        app.action(action_id)(_quick_answer(services, status))
    app.action(PulseIds.ADD_DETAILS)(_open_details(services))


def _quick_answer(services: Services, status: PulseStatus) -> Callable[..., None]:
    def answer(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        now = services.clock()
        user, pulse_id = payload_str(body, "user", "id"), _pulse_id(action)
        # A UserError (not the owner, period over) is answered by handlers/guard.py; so is a
        # NotSaved (the database stayed away): the person is told the answer was not saved.
        recorded = transaction(
            services.engine,
            lambda session: record_status(
                session, pulse_id=pulse_id, person=user, status=status, now=now
            ),
            what=Saving.PULSE_ANSWER,
        )
        with once_saved(Saving.PULSE_ANSWER):  # committed: a failure now is no failed answer
            _show_answer(services, body, recorded, user=user, now=now)

    return answer


def _show_answer(
    services: Services, body: dict[str, Any], recorded: RecordedAnswer, *, user: str, now: datetime
) -> None:
    """Wherever it was pressed (DM, Home, the /pulse list), the DM and Home both show the answer."""
    if recorded.created:  # open polls about the initiative hear of a new answer
        after_pulse_answer(services, recorded.answer_id)
    refresh_prompt(services, pulse_id=recorded.pulse_id, now=now)
    refresh_home(services, user_id=user, now=now)
    response_url = optional_str(body, "response_url")
    if response_url and body.get("container", {}).get("is_ephemeral"):
        # Answered from the `/pulse` list: show the list without the answered one.
        with session_scope(services.engine) as session:
            mine = pulses_of(session, person=user, now=now)
        reply = render_json(
            "blocks/pulse_pending.json.j2",
            mine=mine,
            ids=PulseIds,
            command=services.settings.pulse_command,
        )
        services.slack.respond(
            response_url, text=reply["text"], blocks=reply["blocks"], replace_original=True
        )


def _open_details(services: Services) -> Callable[..., None]:
    def open_details(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        pulse_id = _pulse_id(action)
        # The trigger_id lives 3 seconds: open a view that needs no query first, then fill it.
        view_id = services.slack.open_view(
            trigger_id=payload_str(body, "trigger_id"), view=loading_view(pulse_id)
        )
        user = payload_str(body, "user", "id")
        try:
            with session_scope(services.engine) as session:
                view = details_view(session, pulse_id=pulse_id, person=user, now=services.clock())
        except UserError as exc:  # the loading modal is open: it says why, rather than a DM
            view = message_view(say_error(exc))
        services.slack.update_view(view_id=view_id, view=view)

    return open_details


def _pulse_id(action: dict[str, Any]) -> int:
    value = payload_str(action, "value")
    pulse_id = row_id_in(value)
    if pulse_id is None:
        raise BadPayload(f"pulse button value {value[:40]!r} is not a pulse id")
    return pulse_id
