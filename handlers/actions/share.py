""" "Share in channel" on a /kpi or /plan answer: post it for everyone, then drop the private copy."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack

from bot.links import MessageLinks
from bot.reports import DigestWanted, kpi_answer, plan_answer
from bot.services import Services
from bot.slack.errors import ChannelNotFound, NotInChannel, SlackError
from handlers.guard import GuardedApp
from handlers.payload import BadPayload, payload_str
from storage.db import session_scope
from templates.answers import (
    Asked,
    kpi_message,
    parse_share_value,
    plan_message,
    share_failed_message,
)
from templates.ids import QueryIds

log = logging.getLogger(__name__)


def register(app: GuardedApp, services: Services) -> None:
    settings = services.settings

    @app.action(QueryIds.SHARE)
    def share(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user = payload_str(body, "user", "id")
        channel = payload_str(body, "channel", "id")
        response_url = payload_str(body, "response_url")
        try:
            command, text = parse_share_value(payload_str(body, "actions", 0, "value"))
        except ValueError:
            raise BadPayload("share button value is not ours") from None
        asked = Asked(
            command=command,
            text=text,
            kpi_command=settings.kpi_command,
            plan_command=settings.plan_command,
            shared_by=user,
        )
        # Answered again rather than copied from the button's message: the plan may have moved
        # since, and the shared copy must say what is true now, as seen by the person sharing.
        with session_scope(services.engine) as session:
            if command == "kpi":
                message = kpi_message(kpi_answer(session, text, services.clock()), asked)
            else:
                answer = plan_answer(
                    session, text, user, services.clock(), links=MessageLinks(services.slack)
                )
                if isinstance(answer, DigestWanted):  # a digest answer carries no share button
                    raise BadPayload("share button value is not ours")
                message = plan_message(answer, asked)
        try:
            services.slack.post_message(
                channel=channel, text=message["text"], blocks=message["blocks"]
            )
        except (NotInChannel, ChannelNotFound) as exc:
            failed = share_failed_message(
                exc.code if isinstance(exc, NotInChannel) else "channel_not_found"
            )
            services.slack.respond(response_url, text=failed["text"], blocks=failed["blocks"])
            return
        except SlackError as exc:
            log.warning("sharing a %s answer failed: %s", command, exc.code)
            failed = share_failed_message("unavailable")
            services.slack.respond(response_url, text=failed["text"], blocks=failed["blocks"])
            return
        services.slack.respond(response_url, text=message["text"], delete_original=True)
