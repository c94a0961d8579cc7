"""`/plan <initiative-key | mine | deps | alerts | decisions | help>`, answered ephemerally in the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.clock import utcnow
from bot.links import MessageLinks
from bot.reports import plan_answer
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import payload_str
from storage.db import session_scope
from templates.answers import Asked, plan_message


def register(app: GuardedApp, services: Services) -> None:
    settings = services.settings

    @app.command(settings.plan_command)
    def plan(ack: Ack, body: dict[str, Any]) -> None:
        user = payload_str(body, "user_id")
        text = " ".join(str(body.get("text") or "").split())
        with session_scope(services.engine) as session:
            answer = plan_answer(session, text, user, utcnow(), links=MessageLinks(services.slack))
            message = plan_message(
                answer,
                Asked(
                    command="plan",
                    text=text,
                    kpi_command=settings.kpi_command,
                    plan_command=settings.plan_command,
                ),
            )
        ack(message)
