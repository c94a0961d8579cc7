"""`/kpi [query]`: the scorecard, one KPI's card, the choices or "did you mean", answered in the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.clock import utcnow
from bot.reports import kpi_answer
from bot.services import Services
from handlers.guard import GuardedApp
from storage.db import session_scope
from templates.answers import Asked, kpi_message


def register(app: GuardedApp, services: Services) -> None:
    settings = services.settings

    @app.command(settings.kpi_command)
    def kpi(ack: Ack, body: dict[str, Any]) -> None:
        # A few indexed reads (see docs/BENCHMARKS.md): fast enough to answer in the ack itself,
        # which saves a response_url round trip and keeps the answer private to the asker.
        text = " ".join(str(body.get("text") or "").split())
        with session_scope(services.engine) as session:
            answer = kpi_answer(session, text, utcnow())
            message = kpi_message(
                answer,
                Asked(
                    command="kpi",
                    text=text,
                    kpi_command=settings.kpi_command,
                    plan_command=settings.plan_command,
                ),
            )
        ack(message)
