"""`/decide <milestone-key> [anonymous]`: the framing modal at once for someone who may, else a refusal in the ack.

The checks (the key, who may, an open poll) are a few primary-key reads, done before the ack so
that a refusal, a "did you mean" or the link to the open poll rides on it as an ephemeral, and
no modal opens for someone who may not open a poll.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.decisions.framing import ask_by_command, open_poll_answer
from bot.services import Services
from handlers.deadline import ack_or_respond
from handlers.guard import GuardedApp
from handlers.payload import command_words, payload_str
from storage.db import session_scope


def register(app: GuardedApp, services: Services) -> None:
    command = services.settings.decide_command

    @app.command(command)
    def decide(ack: Ack, body: dict[str, Any]) -> None:
        user = payload_str(body, "user_id")
        text = " ".join(command_words(body))
        with session_scope(services.engine) as session:
            asked = ask_by_command(
                session, text=text, person=user, now=services.clock(), command=command
            )
        if asked.view is None:
            assert asked.open_poll_id is not None
            ack_or_respond(
                ack, open_poll_answer(services, asked.open_poll_id), services=services, body=body
            )
            return
        ack()
        services.slack.open_view(trigger_id=payload_str(body, "trigger_id"), view=asked.view)
