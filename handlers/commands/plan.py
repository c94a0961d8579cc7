"""`/plan <initiative-key | mine | deps | alerts | decisions | digest | help>`, answered ephemerally:
in the ack, or for the digest (it reads the whole plan) through the response_url after it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.digest.content import build_digest
from bot.links import MessageLinks
from bot.reports import DigestWanted, plan_answer
from bot.services import Services
from handlers.deadline import ack_or_respond
from handlers.guard import GuardedApp
from handlers.payload import command_words, payload_str
from storage.db import session_scope
from templates.answers import Asked, plan_message
from templates.digest import digest_private


def register(app: GuardedApp, services: Services) -> None:
    settings = services.settings

    @app.command(settings.plan_command)
    def plan(ack: Ack, body: dict[str, Any]) -> None:
        user = payload_str(body, "user_id")
        text = " ".join(command_words(body))
        now = services.clock()
        with session_scope(services.engine) as session:
            answer = plan_answer(session, text, user, now, links=MessageLinks(services.slack))
            if isinstance(answer, DigestWanted):
                message = None
            else:
                message = plan_message(
                    answer,
                    Asked(
                        command="plan",
                        text=text,
                        kpi_command=settings.kpi_command,
                        plan_command=settings.plan_command,
                    ),
                )
        if message is not None:
            ack_or_respond(ack, message, services=services, body=body)
            return
        ack()
        with session_scope(services.engine) as session:
            digest = digest_private(build_digest(session, now), now)
        services.slack.respond(
            payload_str(body, "response_url"), text=digest["text"], blocks=digest["blocks"]
        )
