"""A poll's parent message: what slipped, the options and the tally, drawn from the database.

The message is redrawn from what is stored, never patched: a vote saved by a process that died
before it called `chat.update` is drawn by the next one that looks (a request or a tick).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bot.services import Services
from storage.db import session_scope
from storage.decisions import PollVotes, Voter, mark_poll_shown, poll_votes
from storage.models import DecisionOption, DecisionPoll
from templates import render_json_object
from templates.ids import PollIds

# Enough for concurrent voters to converge; a message still behind is redrawn by the next tick.
_REDRAWS = 3

# The order the options are offered in, on the message and on App Home.
OPTIONS: tuple[DecisionOption, ...] = (
    DecisionOption.DELAY,
    DecisionOption.DESCOPE,
    DecisionOption.ADD_RESOURCES,
    DecisionOption.ACCEPT_RISK,
)


@dataclass(frozen=True)
class TallyLine:
    option: str
    count: int
    voters: list[Voter]  # empty in an anonymous poll


@dataclass(frozen=True)
class Tally:
    lines: list[TallyLine]
    voted: list[Voter]  # everyone who voted, in the order they first did


def tally(poll: DecisionPoll, votes: PollVotes) -> Tally:
    counts = votes.counts()
    lines = [
        TallyLine(
            option=option,
            count=counts[option],
            voters=[voter for voter, chosen in votes.voters if chosen == option],
        )
        for option in OPTIONS
    ]
    return Tally(lines=lines, voted=[voter for voter, _ in votes.voters])


@dataclass(frozen=True)
class PollMessage:
    text: str
    blocks: list[dict[str, Any]]

    @property
    def fingerprint(self) -> str:
        body = json.dumps([self.text, self.blocks], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:32]


def poll_message(poll: DecisionPoll, votes: PollVotes) -> PollMessage:
    message = render_json_object(
        "blocks/decisions/poll.json.j2",
        poll=poll,
        f=poll.facts,
        tally=tally(poll, votes),
        poll_ids=PollIds,
    )
    return PollMessage(text=str(message["text"]), blocks=list(message["blocks"]))


def draw_poll(session: Session, poll_id: int) -> tuple[DecisionPoll, PollMessage] | None:
    """The poll and its message as the database has them now (None: no such poll)."""
    poll = session.get(DecisionPoll, poll_id, populate_existing=True)
    if poll is None:
        return None
    return poll, poll_message(poll, poll_votes(session, poll))


def refresh_poll_message(services: Services, poll_id: int) -> bool:
    """Redraw a posted poll's parent message if what it shows changed; True when it called Slack.

    Two processes redrawing at once may land their `chat.update`s out of order; each looks
    again after its own, so the last one to finish leaves the message as the database has it.
    """
    called = False
    for _ in range(_REDRAWS):
        with session_scope(services.engine) as session:
            drawn = draw_poll(session, poll_id)
            if drawn is None:
                return called
            poll, message = drawn
            if not poll.channel_id or not poll.message_ts or poll.shown == message.fingerprint:
                return called
            channel, ts = poll.channel_id, poll.message_ts
        services.slack.update_message(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks
        )
        called = True
        with session_scope(services.engine) as session:
            mark_poll_shown(session, poll_id, message.fingerprint)
    return called
