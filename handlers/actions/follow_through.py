"""After a decision: the knock-on DM's buttons (Still on track / This moves us too) and Shift later.

The core checks who may press (the person asked; the initiative's owner or an admin); a
refusal is a UserError raised after the ack, which handlers/guard.py answers through the
interaction's response_url. Nothing changes then.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot.alerts import run_detection
from bot.decisions.knock_on import moves_us_view, reply, row_id_from, shift_later, still_on_track
from bot.milestones.buttons import tell_presser
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import optional_str, payload_str
from storage.db import session_scope
from templates.ids import FollowThroughIds


def register(app: GuardedApp, services: Services) -> None:
    @app.action(FollowThroughIds.STILL_ON_TRACK)
    def still_on_track_pressed(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user = payload_str(body, "user", "id")
        knock_on_id = row_id_from(optional_str(action, "value"))
        if still_on_track(services, knock_on_id=knock_on_id, user=user, now=services.clock()):
            tell_presser(
                services,
                user=user,
                response_url=optional_str(body, "response_url"),
                text=reply("on_track"),
            )

    @app.action(FollowThroughIds.MOVES_US)
    def moves_us_pressed(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user = payload_str(body, "user", "id")
        knock_on_id = row_id_from(optional_str(action, "value"))
        # One primary-key query before the modal: only the person asked sees it.
        with session_scope(services.engine) as session:
            view = moves_us_view(session, knock_on_id=knock_on_id, user=user)
        services.slack.open_view(trigger_id=payload_str(body, "trigger_id"), view=view)

    @app.action(FollowThroughIds.SHIFT_LATER)
    def shift_later_pressed(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user, now = payload_str(body, "user", "id"), services.clock()
        decision_id = row_id_from(optional_str(action, "value"))
        shifted = shift_later(services, decision_id=decision_id, user=user, now=now)
        if shifted is None:
            text = reply("already_shifted")
        else:
            text = reply("shifted", count=shifted[0], days=shifted[1])
        tell_presser(
            services, user=user, response_url=optional_str(body, "response_url"), text=text
        )
        if shifted is not None and shifted[0]:
            run_detection(services, now)
