"""A leader's click on a decision poll's vote button, in the poll's message or on App Home.

Refusals (not a leader, the poll closed, a tampered button) are UserErrors raised after the
ack: handlers/guard.py answers them through the response_url, and nothing is recorded. So is a
vote the database could not take (NotSaved), or one saved but then not shown (SavedNotShown).
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack

from bot.decisions.voting import after_vote, cast_vote
from bot.home import refresh_home
from bot.services import Services
from handlers.guard import GuardedApp
from handlers.payload import optional_str, payload_str
from storage.db import Saving, once_saved
from templates.ids import PollIds

VOTE_ACTION = re.compile(rf"^{re.escape(PollIds.VOTE)}:")


def register(app: GuardedApp, services: Services) -> None:
    @app.action(VOTE_ACTION)
    def vote(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        now = services.clock()
        user = payload_str(body, "user", "id")
        on_message = optional_str(body, "container", "type") == "message"
        cast = cast_vote(
            services,
            user=user,
            block_id=optional_str(action, "block_id"),
            value=optional_str(action, "value"),
            action_id=optional_str(action, "action_id"),
            channel_id=optional_str(body, "container", "channel_id") if on_message else None,
            # On a message, a missing ts matches no poll's message.
            message_ts=(optional_str(body, "container", "message_ts") or "")
            if on_message
            else None,
            now=now,
        )
        with once_saved(Saving.VOTE):  # committed: a failure now is no failed vote
            after_vote(services, cast, response_url=optional_str(body, "response_url"))
            if not on_message:  # voted from Home: Home shows their vote now
                refresh_home(services, user_id=user, now=now)
