"""Opening a decision from a button: Open a decision (milestone alerts) and Frame the options (the owner's DM).

Both open the framing modal, for someone allowed to open a poll only: the permission check
comes first (a few primary-key reads, inside the trigger_id's 3 seconds). A refusal, a stale or
forged button is a UserError raised after the ack, answered through the response_url by
handlers/guard.py; a milestone whose poll is open already gets the link to it instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import Ack

from bot.decisions.framing import (
    Asked,
    ask_for_framing,
    ask_for_milestone,
    id_from,
    open_poll_answer,
    tell,
)
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import optional_str, payload_str
from storage.db import session_scope
from templates.ids import FramingIds, MilestoneIds


def register(app: GuardedApp, services: Services) -> None:
    app.action(MilestoneIds.OPEN_DECISION)(_pressed(services, _for_milestone))
    app.action(FramingIds.FRAME)(_pressed(services, _for_framing))


def _for_milestone(session: Any, row_id: int, user: str, url: str | None, now: datetime) -> Asked:
    return ask_for_milestone(
        session, milestone_id=row_id, person=user, now=now, anonymous=None, response_url=url
    )


def _for_framing(session: Any, row_id: int, user: str, url: str | None, now: datetime) -> Asked:
    return ask_for_framing(session, framing_id=row_id, person=user, now=now, response_url=url)


def _pressed(services: Services, ask: Callable[..., Asked]) -> Callable[..., None]:
    def open_framing(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user, url = payload_str(body, "user", "id"), optional_str(body, "response_url")
        row_id = id_from(optional_str(action, "value"))
        with session_scope(services.engine) as session:
            asked = ask(session, row_id, user, url, services.clock())
        if asked.view is not None:
            services.slack.open_view(trigger_id=payload_str(body, "trigger_id"), view=asked.view)
        elif asked.open_poll_id is not None:
            tell(
                services,
                user=user,
                response_url=url,
                message=open_poll_answer(services, asked.open_poll_id),
            )

    return open_framing
