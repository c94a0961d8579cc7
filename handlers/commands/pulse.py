"""`/pulse`: my pending pulse checks with their answer buttons; `/pulse away <from> <to>`, `/pulse back`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_bolt import Ack

from bot.pulses.answers import pulses_of
from bot.pulses.away import clear_away, set_away
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import command_words, payload_str
from storage.db import session_scope
from templates import render_json
from templates.ids import PulseIds


def register(app: GuardedApp, services: Services) -> None:
    command = services.settings.pulse_command

    @app.command(command)
    def pulse(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user, response_url = payload_str(body, "user_id"), payload_str(body, "response_url")
        words = command_words(body)
        now = services.clock()
        # A UserError (a bad date for `away`) is answered through the response_url by the guard.
        reply = _reply(services, command=command, user=user, words=words, now=now)
        services.slack.respond(response_url, text=reply["text"], blocks=reply["blocks"])


def _reply(
    services: Services, *, command: str, user: str, words: list[str], now: datetime
) -> dict[str, Any]:
    """The ephemeral answer to one `/pulse` invocation (text and blocks)."""
    with session_scope(services.engine) as session:
        if not words:
            reply = render_json(
                "blocks/pulse_pending.json.j2",
                mine=pulses_of(session, person=user, now=now),
                ids=PulseIds,
                command=command,
            )
        elif words[0].lower() == "away" and len(words) == 3:
            dates = set_away(session, person=user, start_text=words[1], end_text=words[2], now=now)
            reply = render_json(
                "blocks/pulse_away.json.j2", start=dates.start, end=dates.end, command=command
            )
        elif words[0].lower() == "back" and len(words) == 1:
            was = clear_away(session, person=user, now=now)
            reply = render_json(
                "blocks/pulse_away_back.json.j2",
                was_away=was.end is not None,
                start=was.start,
                end=was.end,
            )
        else:
            unknown = "" if words[0].lower() == "help" else " ".join(words)
            reply = render_json("blocks/pulse_help.json.j2", command=command, unknown=unknown)
    return dict(reply)
