"""`/kpi [query | <key> chart]`: the scorecard, one KPI's card, the choices or "did you mean",
answered in the ack; a chart is drawn and uploaded after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.charts import send_kpi_chart
from bot.reports import KpiChartWanted, kpi_answer
from bot.services import Services
from handlers.deadline import ack_or_respond
from handlers.guard import GuardedApp
from handlers.payload import command_words, payload_str
from storage.db import session_scope
from templates import render_json_object
from templates.answers import Asked, kpi_message


def register(app: GuardedApp, services: Services) -> None:
    settings = services.settings

    @app.command(settings.kpi_command)
    def kpi(ack: Ack, body: dict[str, Any]) -> None:
        # A few indexed reads (see docs/BENCHMARKS.md): fast enough to answer in the ack itself,
        # which saves a response_url round trip and keeps the answer private to the asker.
        text = " ".join(command_words(body))
        now = services.clock()
        with session_scope(services.engine) as session:
            answer = kpi_answer(session, text, now)
            asked = Asked(
                command="kpi",
                text=text,
                kpi_command=settings.kpi_command,
                plan_command=settings.plan_command,
            )
            message = None if isinstance(answer, KpiChartWanted) else kpi_message(answer, asked)
        if message is not None:
            ack_or_respond(ack, message, services=services, body=body)
            return
        assert isinstance(answer, KpiChartWanted)
        ack()  # drawing takes a few hundred milliseconds: Slack must have its ack first
        delivery = send_kpi_chart(
            services,
            kpi_key=answer.key,
            channel_id=payload_str(body, "channel_id"),
            user_id=payload_str(body, "user_id"),
            now=now,
        )
        if delivery.privately:
            services.slack.respond(
                payload_str(body, "response_url"),
                **render_json_object(
                    "blocks/kpi_chart_private.json.j2",
                    kpi_name=delivery.chart.name,
                ),
            )
