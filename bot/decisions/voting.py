"""A leader's vote on a decision poll: the button read and checked, the vote written once, then shown.

The button names its poll twice (its block and its value) and its option twice (its action_id
and its value); anything that does not agree is refused before the database is asked. Who may
vote is read from the plan on every click: only current leaders, never the button's say-so.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot import audit
from bot.decisions.poll_message import OPTIONS, refresh_poll_message
from bot.decisions.thread import post_in_thread
from bot.errors import NotAllowed, NotFound, UserError
from bot.problems import ProblemCode, problem
from bot.row_ids import row_id_in
from bot.services import Services
from bot.slack.errors import SlackError
from storage.db import Saving, session_scope, transaction
from storage.decisions import record_vote
from storage.models import DecisionOption, DecisionPoll, PollState
from storage.people import person_by_slack_id
from templates import render_json_object
from templates.ids import PollIds

log = logging.getLogger(__name__)


class VoteProblem(ProblemCode):
    """Why a click on a vote button is refused (nothing is recorded)."""

    NOT_A_VOTE = "vote.not_a_vote"  # garbage, or a block, value and action that disagree
    UNKNOWN_OPTION = "vote.unknown_option"
    NOT_FOUND = "vote.not_found"
    WRONG_MESSAGE = "vote.wrong_message"
    CLOSED = "vote.closed"
    NOT_LEADER = "vote.not_leader"
    ANONYMOUS_FINAL = "vote.anonymous_final"


@dataclass(frozen=True)
class VoteChoice:
    poll_id: int
    option: DecisionOption


@dataclass(frozen=True)
class CastVote:
    """A vote that was recorded (or repeated): what the voter and the thread are told."""

    poll_id: int
    option: str
    state: str  # "cast" | "changed" | "same" (storage.decisions.VoteWrite)
    previous: str | None
    voter: str  # Slack user ID
    anonymous: bool


def _poll_id(text: str) -> int:
    poll_id = row_id_in(text)
    if poll_id is None:
        raise NotFound(problem(VoteProblem.NOT_A_VOTE))
    return poll_id


def read_vote(*, block_id: str | None, value: str | None, action_id: str | None) -> VoteChoice:
    """The poll and option a vote button names; a UserError unless block, value and action agree."""
    block_prefix, _, block_poll = (block_id or "").partition(":")
    value_poll, _, value_option = (value or "").partition(":")
    action_prefix, _, action_option = (action_id or "").partition(":")
    if block_prefix != PollIds.VOTE_BLOCK or action_prefix != PollIds.VOTE:
        raise NotFound(problem(VoteProblem.NOT_A_VOTE))
    poll_id = _poll_id(block_poll)
    if _poll_id(value_poll) != poll_id or value_option != action_option:
        raise NotFound(problem(VoteProblem.NOT_A_VOTE))
    if value_option not in {str(option) for option in OPTIONS}:
        raise NotFound(problem(VoteProblem.UNKNOWN_OPTION))
    return VoteChoice(poll_id=poll_id, option=DecisionOption(value_option))


def check_message(poll: DecisionPoll, *, channel_id: str | None, message_ts: str | None) -> None:
    """A click on a message must be on this poll's own parent message (Home has no message)."""
    if message_ts is None:
        return
    if poll.message_ts is None:
        # Not recorded yet: the parent message is being posted right now (its ts is stored
        # just after chat.postMessage answers), so a click on it is let through.
        return
    if message_ts != poll.message_ts or (channel_id is not None and channel_id != poll.channel_id):
        raise NotFound(problem(VoteProblem.WRONG_MESSAGE))


def cast_vote(
    services: Services,
    *,
    user: str,
    block_id: str | None,
    value: str | None,
    action_id: str | None,
    channel_id: str | None,
    message_ts: str | None,
    now: datetime,
) -> CastVote:
    """Record `user`'s click on a vote button, once; a UserError (nothing written) when refused.

    A NotSaved when the database stayed away (storage.db.transaction): nothing written either.
    """
    choice = read_vote(block_id=block_id, value=value, action_id=action_id)
    return transaction(
        services.engine,
        lambda session: _record_choice(
            session, choice, user=user, channel_id=channel_id, message_ts=message_ts, now=now
        ),
        what=Saving.VOTE,
    )


def _record_choice(
    session: Session,
    choice: VoteChoice,
    *,
    user: str,
    channel_id: str | None,
    message_ts: str | None,
    now: datetime,
) -> CastVote:
    """One try at writing the vote; a repeat after a lost COMMIT finds it and writes nothing."""
    poll = session.get(DecisionPoll, choice.poll_id)
    if poll is None:
        raise NotFound(problem(VoteProblem.NOT_FOUND))
    check_message(poll, channel_id=channel_id, message_ts=message_ts)
    person = person_by_slack_id(session=session, slack_id=user)
    if person is None or person.id is None or not (person.is_leader and person.active):
        raise NotAllowed(problem(VoteProblem.NOT_LEADER))
    if poll.state != PollState.OPEN:
        raise UserError(problem(VoteProblem.CLOSED))
    written = record_vote(
        session,
        poll_id=choice.poll_id,
        voter_id=person.id,
        option=choice.option,
        anonymous=poll.anonymous,
        now=now,
    )
    if written.state == "closed":  # closed between the read above and the write
        raise UserError(problem(VoteProblem.CLOSED))
    if written.state == "kept":
        raise UserError(problem(VoteProblem.ANONYMOUS_FINAL))
    if written.state in ("cast", "changed"):
        audit.record(
            session,
            actor=f"slack:{user}",
            action="vote" if written.state == "cast" else "change_vote",
            entity="decision_poll",
            entity_key=str(choice.poll_id),
            # An anonymous poll's log says that someone voted, never what they chose.
            before=None if poll.anonymous else _option(written.previous),
            after={"voted": True} if poll.anonymous else _option(choice.option),
            now=now,
        )
    return CastVote(
        poll_id=choice.poll_id,
        option=choice.option,
        state=written.state,
        previous=written.previous,
        voter=user,
        anonymous=poll.anonymous,
    )


class _CoalescedRedraws:
    """One redraw of a poll at a time in this process; votes arriving meanwhile ask for one more.

    Fifty leaders voting at once would otherwise make fifty listeners each redraw the message
    (and again, as the others' votes land), holding the listener threads that later clicks need
    for their ack. The thread drawing now draws again until no vote came in meanwhile, so the
    last vote is always drawn; another process's redraws converge through the fingerprint
    (`refresh_poll_message`), and anything left over is drawn by the next tick.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._again: set[int] = set()

    def redraw(self, services: Services, poll_id: int) -> None:
        with self._lock:
            if poll_id in self._running:
                self._again.add(poll_id)  # the running redraw will read this vote too
                return
            self._running.add(poll_id)
        try:
            while True:
                try:
                    refresh_poll_message(services, poll_id)
                except SlackError as exc:
                    log.warning("Could not redraw poll %s after a vote: %s", poll_id, exc.code)
                with self._lock:
                    if poll_id not in self._again:
                        self._running.discard(poll_id)
                        return
                    self._again.discard(poll_id)
        except BaseException:
            with self._lock:
                self._running.discard(poll_id)
                self._again.discard(poll_id)
            raise


_REDRAWS = _CoalescedRedraws()


def _option(option: str | None) -> dict[str, str] | None:
    return {"option": option} if option is not None else None


def after_vote(services: Services, cast: CastVote, *, response_url: str | None) -> None:
    """The tally redrawn, the voter told, and the thread told of a changed vote (named polls).

    The vote is committed: a Slack failure here is logged and left to the next tick (the tally)
    or lost (a thread line, a confirmation), never shown to the voter as if the vote had failed.
    """
    _REDRAWS.redraw(services, cast.poll_id)
    if response_url:
        with session_scope(services.engine) as session:
            poll = session.get(DecisionPoll, cast.poll_id)
            assert poll is not None
            message = render_json_object(
                "blocks/decisions/vote_recorded.json.j2", poll=poll, cast=cast
            )
        try:
            services.slack.respond(
                response_url, text=str(message["text"]), blocks=list(message["blocks"])
            )
        except SlackError as exc:
            log.warning("Could not confirm a vote on poll %s: %s", cast.poll_id, exc.code)
    if cast.state == "changed" and not cast.anonymous:
        try:
            post_in_thread(
                services, cast.poll_id, "blocks/decisions/vote_changed.json.j2", cast=cast
            )
        except SlackError as exc:
            log.warning("Could not tell poll %s's thread of a change: %s", cast.poll_id, exc.code)
