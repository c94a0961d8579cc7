"""Replies in a poll's thread: news about its subject, and its outcome broadcast to the channel."""

from __future__ import annotations

from typing import Any

from bot.services import Services
from bot.slack.gateway import MessageTag, PostedMessage
from storage.db import session_scope
from storage.models import DecisionPoll
from templates import render_json_object


def post_in_thread(
    services: Services,
    poll_id: int,
    template: str,
    *,
    broadcast: bool = False,
    tag: MessageTag | None = None,
    **context: Any,
) -> PostedMessage | None:
    """Reply in the poll's thread with `template` (a message: text and blocks).

    None when the poll has no message yet (it is posted by the next tick; news before that
    is already in what its message states). Slack errors propagate: the caller decides
    whether the line is worth a retry.
    """
    with session_scope(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        if poll is None or not poll.channel_id or not poll.message_ts:
            return None
        channel, ts = poll.channel_id, poll.message_ts
        message = render_json_object(template, poll=poll, f=poll.facts, **context)
    return services.slack.post_message(
        channel=channel,
        text=str(message["text"]),
        blocks=list(message["blocks"]),
        thread_ts=ts,
        broadcast=broadcast,
        tag=tag,
    )
